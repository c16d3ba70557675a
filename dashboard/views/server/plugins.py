"""Server plugins (list; parameters reviewed, then applied) and the external command."""

from __future__ import annotations

from django.views.decorators.http import require_GET, require_http_methods

from dashboard.rendering import render_page
from dashboard.views.server.common import api_error_text, mt4_only_notice, sidecar_read
from platforms.access.actions import action
from platforms.access.scope import get_visible_platform
from platforms.audit import Actor
from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.server.forms import (
    ExternalCommandForm,
)
from platforms.server.services import (
    diff_params,
    plugin_values,
    send_external_command,
    update_plugin_params,
)


@require_GET
@action("manage_plugins", label="the plugin list")
def plugin_list(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    context = {"platform": platform, "error": mt4_only_notice(platform)}
    if not context["error"]:
        context["plugins"] = sidecar_read(context, client_for(platform).mt4.plugins_get)
    return render_page(request, "dashboard/server/plugins.html", context)


@require_http_methods(["GET", "POST"])
@action("manage_plugins", label="review and apply plugin parameters")
def plugin_detail(request, pk: int, pos: int):
    """Parameters of one plugin; POST "review" shows the diff, POST "apply" sends it."""
    platform = get_visible_platform(request.user, pk)
    context = {"platform": platform, "pos": pos, "error": mt4_only_notice(platform)}
    if context["error"]:
        return render_page(request, "dashboard/server/plugin.html", context)
    param = sidecar_read(context, client_for(platform).mt4.plugin_param_get, pos)
    if param is None:
        return render_page(request, "dashboard/server/plugin.html", context)
    current = plugin_values(param)
    context.update(plugin=param.plugin, values=current)
    if request.method == "POST":
        proposed = {name: request.POST.get(f"param-{i}", current[name])
                    for i, name in enumerate(current)}
        changes = diff_params(current, proposed)
        context["values"] = proposed
        if not changes:
            context["notice"] = "Nothing changed; nothing was sent."
        elif "apply" in request.POST:
            try:
                applied = update_plugin_params(actor=Actor.of(request), platform=platform,
                                               pos=pos, new_values=proposed)
            except ManagerApiError as exc:
                context["error"] = api_error_text(exc, sidecar=True)
            else:
                context["applied"] = applied
                context["values"] = proposed
        else:
            context["changes"] = changes
    return render_page(request, "dashboard/server/plugin.html", context)


@require_http_methods(["GET", "POST"])
@action("manage_plugins", label="send an external command")
def external_command(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    form = ExternalCommandForm(request.POST or None)
    context = {"platform": platform, "form": form, "error": mt4_only_notice(platform)}
    if request.method == "POST" and not context["error"] and form.is_valid():
        try:
            context["reply"] = send_external_command(
                actor=Actor.of(request), platform=platform, data=form.cleaned_data["data"])
        except ManagerApiError as exc:
            context["error"] = api_error_text(exc, sidecar=True)
    return render_page(request, "dashboard/server/command.html", context)
