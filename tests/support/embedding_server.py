"""The tests' embedding service: a real model behind the two documented embedding APIs.

The model is ``wordllama`` (PyPI), whose wheel ships its weights (``l2_supercat_256.safetensors``) and its
tokenizer, so it embeds offline: 256-dimensional, unit-length sentence vectors. It is loaded from the
package's own files (``WordLlama.load`` would look for the tokenizer in the wrong folder and then try to
download it). The HTTP face speaks:

- Hugging Face Text Embeddings Inference: ``POST /embed`` (``{"inputs": str | [str], "truncate"}`` ->
  ``[[float]]``) and ``GET /info``;
- the OpenAI embeddings API: ``POST /v1/embeddings`` (``{"model", "input": str | [str],
  "encoding_format"}`` -> ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
  "model", "usage"}``).

Every embedding request is logged as one JSON line on stdout (path, model, input count and the request's
headers), which the tests read to see what the gateway sent. ``--delay SECONDS`` makes every embedding
answer that late (a slow service). Run as ``python tests/support/embedding_server.py PORT [--delay S]``;
:func:`start_embedding_server` starts it on 127.0.0.1 as the tests' other peers are started (stopped by
its pid).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:  # run as a script, the process has no ``tests`` package on its path
    from tests.support.gateway_processes import Proc

MODEL = "wordllama-l2-supercat-256"
"""The model id the service reports (``/info``, OpenAI answers)."""


def load_model() -> Any:
    """wordllama's bundled model (see the module docstring)."""
    import wordllama  # noqa: PLC0415 - heavy (numpy, tokenizers): only in the server's process
    from safetensors import safe_open  # noqa: PLC0415
    from tokenizers import Tokenizer  # noqa: PLC0415
    from wordllama.inference import WordLlamaInference  # noqa: PLC0415

    root = Path(wordllama.__file__).parent
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as weights:
        embedding = weights.get_tensor("embedding.weight")
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    return WordLlamaInference(embedding, tokenizer)


def build_app(model: Any, delay: float = 0.0) -> Starlette:
    def vectors(texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in model.embed(texts, norm=True)]

    async def embedded(request: Request, texts: Any, model_name: str | None) -> list[list[float]] | None:
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return None
        record = {"path": request.url.path, "model": model_name, "inputs": len(texts)}
        print(json.dumps({**record, "headers": dict(request.headers)}), flush=True)
        if delay:
            await asyncio.sleep(delay)
        return vectors(texts)

    async def embed(request: Request) -> JSONResponse:
        body = await request.json()
        result = await embedded(request, body.get("inputs"), None)
        if result is None:
            return JSONResponse({"error": "inputs must be a string or a list of strings"}, status_code=422)
        return JSONResponse(result)

    async def openai(request: Request) -> JSONResponse:
        body = await request.json()
        if not body.get("model"):
            return JSONResponse({"error": {"message": "you must provide a model"}}, status_code=400)
        result = await embedded(request, body.get("input"), body["model"])
        if result is None:
            return JSONResponse({"error": {"message": "input must be a string or strings"}}, status_code=400)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(result)]
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def info(_: Request) -> JSONResponse:
        return JSONResponse({"model_id": MODEL, "max_client_batch_size": 32})

    return Starlette(
        routes=[
            Route("/embed", embed, methods=["POST"]),
            Route("/info", info, methods=["GET"]),
            Route("/v1/embeddings", openai, methods=["POST"]),
        ]
    )


def start_embedding_server(port: int, logdir: Path, delay: float = 0.0, name: str = "embeddings") -> Proc:
    """The service on 127.0.0.1:``port``, up (its model loaded); stop it with ``.stop()``."""
    from tests.support import gateway_processes as gp  # noqa: PLC0415

    argv = [sys.executable, __file__, str(port), "--delay", str(delay)]
    proc = gp.start(name, argv, logdir)
    try:
        gp.wait_http(f"http://127.0.0.1:{port}/info", proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def requests_logged(proc: Proc) -> list[dict[str, Any]]:
    """The embedding requests the service received, oldest first."""
    lines = proc.log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith('{"path"')]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every embedding answer")
    args = parser.parse_args()
    app = build_app(load_model(), args.delay)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
