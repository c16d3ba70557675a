"""Which columns each user wants in each list (remembered per user)."""

from __future__ import annotations

from dashboard.models import ListPreference


def chosen_columns(user, list_name: str, available: list[str]) -> list[str]:
    saved = ListPreference.objects.filter(user=user, list_name=list_name).first()
    if saved is None:
        return available
    columns = [c for c in saved.columns if c in available]
    return columns or available


def save_columns(user, list_name: str, columns: list[str], available: list[str]) -> None:
    ListPreference.objects.update_or_create(
        user=user, list_name=list_name,
        defaults={"columns": [c for c in columns if c in available]},
    )
