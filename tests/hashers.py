"""A password hasher for the test run only (see ``tests/conftest.py``)."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 with few rounds: the suite creates hundreds of users, and at the default
    ~1,000,000 rounds each costs 0.6 s of CPU here. Same algorithm name, so a server process a
    test starts (with the default hashers) still verifies these hashes: the rounds are in them."""

    iterations = 1_000
