"""The app ``segments ui`` serves: MLflow's own server, plus one page that opens it on
"Model training".

MLflow 3.17's UI shows the "GenAI" workflow unless the URL names another
(``workflowType=machine_learning``) or the browser remembers the sidebar toggle set by hand
(``localStorage["mlflow.workflowType_v1"]``). A URL alone lands on the runs, but the next
click (a run, the experiment's name, the home page) drops the parameter and the UI falls
back to GenAI: a run listed under "Evaluation runs", the experiment opening on an overview
of traces. A page of the same origin can set what the toggle would, so ``segments ui``
prints ``/segments/#/experiments/<id>/runs?...``: :data:`LANDING_PATH` sets the workflow
(and, unless the user chose otherwise, keeps MLflow's assistant panel closed: it needs a
language model a bank's reviewer does not have), then replaces itself with the page named
after ``#``.

Registered as the MLflow app ``segments`` (entry point group ``mlflow.app``), run with
``mlflow server --app-name segments``; every other path goes to MLflow's app unchanged.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

__all__ = ["APP_NAME", "LANDING_PAGE", "LANDING_PATH", "SegmentsUI", "app", "installed"]

#: The name ``mlflow server --app-name`` takes (see pyproject's ``mlflow.app`` entry point).
APP_NAME = "segments"
#: Where the landing page is served; what ``segments ui`` prints starts with it.
LANDING_PATH = "/segments/"

#: The toggle's choice as MLflow's UI stores it (a versioned key, a JSON value).
_STORED = {"mlflow.workflowType_v1": '"machine_learning"'}
#: Stored only where the user has made no choice of their own.
_DEFAULTS = {
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
}


def _script() -> str:
    sets = "".join(f"s.setItem({k!r}, {v!r});" for k, v in _STORED.items())
    defaults = "".join(
        f"if (s.getItem({k!r}) === null) s.setItem({k!r}, {v!r});" for k, v in _DEFAULTS.items()
    )
    return (
        f"try {{ var s = window.localStorage; {sets} {defaults} }} catch (e) {{}}\n"
        'location.replace(location.pathname.replace(/segments\\/?$/, "") + '
        '(location.hash || "#/experiments?workflowType=machine_learning"));'
    )


#: The landing page: UTF-8, no external resource, replaced by the MLflow page at once.
LANDING_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>segments: opening the MLflow UI</title>
<script>
{_script()}
</script></head>
<body><noscript>The MLflow UI needs JavaScript: open <a href="../">the UI</a> and choose
"Model training" in the sidebar.</noscript></body></html>
"""


class SegmentsUI:
    """An ASGI app: :data:`LANDING_PAGE` at :data:`LANDING_PATH`, MLflow's app elsewhere.

    An instance, not a function: MLflow starts a plain function as an app factory.
    MLflow's app is imported on the first request (or lifespan event), in the server's
    worker, as ``mlflow server`` would import it.
    """

    def __init__(self) -> None:
        self._mlflow: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in (LANDING_PATH, LANDING_PATH[:-1]):
            body = LANDING_PAGE.encode("utf-8")
            headers = [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if self._mlflow is None:
            from mlflow.server.fastapi_app import app as mlflow_app

            self._mlflow = mlflow_app
        await self._mlflow(scope, receive, send)


#: What ``mlflow server --app-name segments`` runs.
app = SegmentsUI()


def installed() -> bool:
    """Whether MLflow can find this app (the package was installed with its entry points)."""
    found = importlib.metadata.entry_points(group="mlflow.app", name=APP_NAME)
    return any(ep.value == f"{__name__}:app" for ep in found)
