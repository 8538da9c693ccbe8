"""The FastAPI app: POST / and /predict (dynamically batched), GET /health, /info, and the try-it page.

Every error is JSON, ``{"error": "what was expected"}``, the shape the hosted Inference API uses.
Request bodies are read with a byte bound and refused with 413 past it, before any parsing.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .batching import DynamicBatcher
from .protocol import RequestError, decode_json, parse_request
from .settings import ServeSettings

PAGE = Path(__file__).with_name("page.html")


def create_app(model, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """An app serving ``model``: a ``ServedModel``, or a model folder / hub id to load one from."""
    from .model import ServedModel

    served = model if isinstance(model, ServedModel) else ServedModel(model, threads=settings.threads)
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        torch_threads = None if served.on_onnx else settings.threads
        batcher = DynamicBatcher(served.run, settings.max_batch_size, settings.max_wait_ms,
                                 thread_initializer=_torch_threads(torch_threads))
        batcher.start()
        state["batcher"] = batcher
        try:
            yield
        finally:
            await batcher.close()

    app = FastAPI(title="textrnn", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    info = {**served.info(), "serving": asdict(settings)}
    _add_error_handlers(app)

    async def predict(request: Request) -> JSONResponse:
        body = await _read_bounded(request, settings.max_body_bytes)
        parsed = parse_request(decode_json(body), served.task, settings.max_input_chars,
                               served.parameter_defaults)
        results = await state["batcher"].submit(parsed.texts, parsed.params)
        return JSONResponse(results[0] if parsed.single else results)

    app.add_api_route("/", predict, methods=["POST"], summary="Predict (Hugging Face Inference API shapes)")
    app.add_api_route("/predict", predict, methods=["POST"], summary="Same as POST /")

    @app.get("/health")
    async def health() -> dict:
        batcher = state.get("batcher")
        stats = batcher.stats.to_dict() if batcher else {}
        return {"status": "ok" if batcher else "starting", "waiting": batcher.waiting if batcher else 0, **stats}

    @app.get("/info")
    async def model_info() -> dict:
        return info

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    return app


async def _read_bounded(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it passes ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    too_big = f"the request body is larger than this server's limit of {limit} bytes (--max-body-bytes)"
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def bad_request(_request: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        message = {404: f"no such endpoint {request.url.path}; expected POST / or /predict, GET /, /health, "
                        "/info or /docs",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(err.status_code, str(err.detail))
        return JSONResponse({"error": message}, status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def failure(_request: Request, err: Exception) -> JSONResponse:
        # starlette logs the traceback after this answer is sent; the batcher logged model failures
        return JSONResponse({"error": f"the server failed on this request: {type(err).__name__}: {err}"},
                            status_code=500)


def _torch_threads(threads: Optional[int]) -> Optional[Callable[[], None]]:
    if threads is None:
        return None

    def initializer() -> None:
        import torch

        torch.set_num_threads(threads)

    return initializer


def run(model, host: str = "127.0.0.1", port: int = 8080, settings: ServeSettings = ServeSettings(),
        log_level: str = "info") -> None:
    """Serve ``model`` (a ``ServedModel``, folder or hub id) until interrupted: ``textrnn serve``."""
    import uvicorn

    uvicorn.run(create_app(model, settings), host=host, port=port, log_level=log_level, access_log=False)
