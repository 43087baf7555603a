"""Notifications through Apprise: URLs checked when a flow is defined, messages sent from the
run's driver when the run reaches a state its notifiers asked for.

Apprise (https://github.com/caronc/apprise) turns one URL into a sender: `json://host/path`
posts JSON, `mailto://user:pass@host` sends e-mail, `slack://...`, `msteams://...` and about a
hundred more. It is imported only by flows that name notifiers (it takes a good part of a
second to import).

Sending never changes a run: a notifier that fails (refused, unreachable, slow past Apprise's
timeouts) is logged as a warning naming its scheme and host, never its credentials. The link in
the message is the run's page on the server named by `DAGFLOW_API_URL`, when set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from dagflow.core.notify import Notifier, _shown, message
from dagflow.errors import DefinitionError

log = logging.getLogger(__name__)


def check_urls(flow_name: str, notifiers: Sequence[Notifier]) -> None:
    """Refuse, naming it, a URL Apprise cannot turn into a sender."""
    import apprise

    for notifier in notifiers:
        if not apprise.Apprise().add(notifier.url):
            raise DefinitionError(
                f"flow {flow_name!r}: notify: {_shown(notifier.url)} is not a URL Apprise "
                "can send to (see https://github.com/caronc/apprise/wiki for the forms)"
            )


def send(
    notifiers: Sequence[Notifier],
    state: str,
    flow_name: str,
    run_id: str,
    error: str | None,
    api_url: str | None,
    reason: str | None = None,
) -> int:
    """Tell each notifier that asked for `state`; returns how many were told."""
    wanted = [n for n in notifiers if state in n.on]
    if not wanted:
        return 0
    import apprise

    link = f"{api_url}/runs/{run_id}" if api_url else None
    title, body = message(flow_name, run_id, state, error, link, reason)
    kind = (
        apprise.NotifyType.FAILURE
        if state in ("FAILED", "TIMED_OUT", "CRASHED")
        else (apprise.NotifyType.SUCCESS if state == "COMPLETED" else apprise.NotifyType.INFO)
    )
    told = 0
    for notifier in wanted:
        try:
            sender = apprise.Apprise()
            sender.add(notifier.url)
            ok = sender.notify(body=body, title=title, notify_type=kind)
        except Exception as exc:
            log.warning("notifier %s failed: %s", _shown(notifier.url), type(exc).__name__)
            continue
        if ok:
            told += 1
        else:
            log.warning("notifier %s refused or could not be reached", _shown(notifier.url))
    return told


def send_quietly(*args: Any) -> None:
    """`send`, never raising (a run's end or pause calls it)."""
    try:
        send(*args)
    except Exception:
        log.warning("sending notifications failed", exc_info=True)
