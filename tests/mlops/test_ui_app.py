"""The app ``segments ui`` serves (segments.mlops.ui_app): MLflow finds it by name, starts
it as an app (not a factory), and its landing page opens the UI on "Model training"."""

from __future__ import annotations

import asyncio

from segments.mlops import ui_app


def _get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """``GET path`` through the ASGI app, as uvicorn calls it."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    asyncio.run(ui_app.app(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def test_mlflow_finds_the_app_by_name_and_runs_it_as_an_app_not_a_factory():
    from mlflow.server import _find_app, _is_factory

    assert ui_app.installed()
    target = _find_app(ui_app.APP_NAME)
    assert target == "segments.mlops.ui_app:app"
    assert not _is_factory(target)  # a plain function would be called with no arguments


def test_the_landing_page_stores_the_model_training_workflow_and_moves_on():
    status, headers, body = _get(ui_app.LANDING_PATH)
    assert status == 200
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    page = body.decode("utf-8")
    assert page == ui_app.LANDING_PAGE and '<meta charset="utf-8">' in page
    # What MLflow's sidebar toggle stores (the key and JSON value its UI code reads).
    assert "s.setItem('mlflow.workflowType_v1', '\"machine_learning\"');" in page
    # The assistant panel stays closed only where the user has not chosen.
    assert "if (s.getItem('mlflow.assistant.panelOpen_v1') === null)" in page
    assert "location.replace(" in page and "location.hash" in page
    assert _get("/segments")[0] == 200  # without the slash too
