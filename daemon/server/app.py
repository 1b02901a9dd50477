"""The daemon's HTTP API (aiohttp): llama.cpp-compatible /infill, /completion, /health, /props, /v1/models;
OpenAI-compatible /v1/completions (SSE with [DONE]); native /v1/ghost (SSE, cancellation by request id);
/metrics in Prometheus text format; POST /v1/feedback records a completion's outcome in the local telemetry.

With telemetry on (`create_app(..., telemetry=Telemetry(...))`), every answered or cancelled completion request
gets a row (see daemon.telemetry; never any code text), and its request id comes back in the X-Request-Id header
and, where the reply has room for an extra field, in the body: /infill and /completion objects carry "id" unless
the client chose its `response_fields` (llama.vim does: its reply stays byte-for-byte what it asked for),
/v1/completions' "id" and /v1/ghost's "id" are the request id.

Every JSON body is serialized compactly (`separators=(",", ":")`): llama.vim looks for `"content":"` verbatim.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ghostline.daemon.engine.fim import ExtraChunk
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.engine.types import CompletionRequest, CompletionResult, Job, TokenEvent
from ghostline.daemon.server.chat import chat_chunk, chat_messages, chat_object, chat_request
from ghostline.daemon.server.chat import finish_reason as chat_finish_reason
from ghostline.daemon.server.security import host_allowed
from ghostline.daemon.telemetry import EVENTS, Telemetry, record_from

log = logging.getLogger("ghostline.daemon.server")

MAX_BODY = 8 * 2**20
ENGINE_KEY: web.AppKey[Engine] = web.AppKey("engine", Engine)
SETTINGS_KEY: web.AppKey[dict[str, Any]] = web.AppKey("settings", dict)
TELEMETRY_KEY: web.AppKey[Telemetry | None] = web.AppKey("telemetry")
# request id -> why it was cancelled ("superseded" | "explicit" | "disconnect"), set just before the cancel and
# taken when its telemetry row is written
CANCEL_REASONS_KEY: web.AppKey[dict[str, str]] = web.AppKey("cancel_reasons", dict)
# one future per job whose telemetry row is not queued yet, set when it is (shutdown waits for them)
UNRECORDED_KEY: web.AppKey[set[asyncio.Future[None]]] = web.AppKey("unrecorded", set)
# requests refused for a missing/wrong token: {"missing": n, "wrong": n, "last_at": unix time, "last_reason": ...}
AUTH_KEY: web.AppKey[dict[str, Any]] = web.AppKey("auth_rejections", dict)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(text=dumps(obj), status=status, content_type="application/json")


_ERR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
              404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
              500: "server_error", 503: "unavailable_error"}


def error_response(status: int, message: str, etype: str | None = None) -> web.Response:
    return json_response({"error": {"code": status, "message": message, "type": etype or _ERR_TYPES.get(status,
                          "server_error")}}, status)


class BadRequest(Exception):
    pass


# ---------------------------------------------------------------------------------------------------- middleware

@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    settings = request.app[SETTINGS_KEY]
    if not host_allowed(request.headers.get("Host"), settings["allowed_hosts"]):
        return error_response(403, "Host header is not a loopback address (DNS rebinding protection)")
    if request.method == "OPTIONS":
        return error_response(403, "cross-origin requests are not allowed")
    origin = request.headers.get("Origin")
    if origin and origin != "null" and not host_allowed(origin.split("://", 1)[-1].split("/", 1)[0],
                                                         settings["allowed_hosts"]):
        return error_response(403, "cross-origin requests are not allowed")
    token = settings["token"]
    if token and request.path != "/health":
        auth = request.headers.get("Authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("X-Api-Key", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            _count_rejection(request.app, "missing" if not given else "wrong", request.path)
            return error_response(401, "missing or invalid bearer token (`agent daemon token` prints it)")
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"request body is larger than {settings['max_body']} bytes")
    except BadRequest as e:
        return error_response(400, str(e))
    except web.HTTPException as e:
        if e.status >= 400:
            return error_response(e.status, e.reason)
        raise


def _count_rejection(app: web.Application, why: str, path: str) -> None:
    """A request without the right token: counted for `agent daemon status` (llama.vim drops a 401 without a
    word) and logged, at most once a minute."""
    auth = app[AUTH_KEY]
    auth[why] += 1
    now = time.time()
    if now - auth["last_at"] > 60:
        log.warning("rejected a request to %s: %s bearer token (the editor's api key must be the token that "
                    "`agent daemon token` prints)", path, why)
    auth["last_at"] = now
    auth["last_reason"] = why


async def read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise BadRequest("empty request body; expected a JSON object")
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON: {e}") from e
    if not isinstance(obj, dict):
        raise BadRequest("the request body must be a JSON object")
    return obj


# ---------------------------------------------------------------------------------------------- field parsing

def _num(body: dict[str, Any], key: str, default: Any, kind: type = float) -> Any:
    v = body.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadRequest(f"'{key}' must be a number")
    return kind(v)


def _str(body: dict[str, Any], key: str, default: str = "") -> str:
    v = body.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise BadRequest(f"'{key}' must be a string")
    return v


def _stops(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return v
    raise BadRequest("'stop' must be a string or a list of strings")


def _extra(v: Any) -> list[ExtraChunk]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise BadRequest("'input_extra' must be a list of {text, filename, time}")
    out = []
    for ch in v:
        if not isinstance(ch, dict) or not isinstance(ch.get("text", ""), str):
            raise BadRequest("each 'input_extra' item must be an object with a string 'text'")
        fn = ch.get("filename", "")
        out.append(ExtraChunk(ch.get("text", ""), fn if isinstance(fn, str) else str(fn)))
    return out


def _generation_fields(body: dict[str, Any], req: CompletionRequest) -> None:
    """The generation controls /infill, /completion and /v1/ghost share: indent, time bounds, sampling,
    candidates, stop strings."""
    req.n_indent = _num(body, "n_indent", 0, int)
    req.t_max_prompt_ms = _num(body, "t_max_prompt_ms", 0.0)
    req.t_max_predict_ms = _num(body, "t_max_predict_ms", 0.0)
    _sampling(body, req)
    req.n_cmpl = max(1, _num(body, "n_cmpl", 1, int))
    if req.n_cmpl > 16:
        raise BadRequest("'n_cmpl' must be at most 16")
    req.stop = _stops(body.get("stop"))


def _sampling(body: dict[str, Any], req: CompletionRequest) -> None:
    req.temperature = _num(body, "temperature", 0.0)
    samplers = body.get("samplers")
    if samplers is not None and not (isinstance(samplers, list) and all(isinstance(s, str) for s in samplers)):
        raise BadRequest("'samplers' must be a list of strings")
    req.top_k = _num(body, "top_k", 0, int)
    req.top_p = _num(body, "top_p", 1.0)
    if samplers is not None:
        if "top_k" not in samplers:
            req.top_k = 0
        if "top_p" not in samplers:
            req.top_p = 1.0
    seed = body.get("seed")
    req.seed = int(seed) if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None
    # llama.cpp's infill defaults: top_k/top_p only act when sampling with a temperature; greedy otherwise.


def llama_request(body: dict[str, Any], infill: bool, client: str) -> CompletionRequest:
    req = CompletionRequest()
    prompt = body.get("prompt", "")
    if isinstance(prompt, list) and all(isinstance(x, str) for x in prompt):
        prompt = "".join(prompt)
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    if infill:
        req.prefix = _str(body, "input_prefix") + prompt
        req.suffix = _str(body, "input_suffix")
        req.extra = _extra(body.get("input_extra"))
    else:
        req.raw_prompt = prompt
    req.n_predict = _num(body, "n_predict", 128 if infill else -1, int)
    if req.n_predict < 0:
        req.n_predict = -1
    _generation_fields(body, req)
    cp = body.get("cache_prompt", True)
    req.cache_prompt = bool(cp)
    id_slot = body.get("id_slot", -1)
    if not isinstance(id_slot, int) or isinstance(id_slot, bool):
        raise BadRequest("'id_slot' must be an integer")
    req.client_id = client
    fn = body.get("filename")
    if isinstance(fn, str):
        req.filename = fn
    req.stream = bool(body.get("stream"))
    req.reports_outcomes = body.get("reports_outcomes") is True
    return req


# ------------------------------------------------------------------------------------------- llama.cpp replies

def llama_object(res: CompletionResult, i: int, n_probs: bool = False) -> dict[str, Any]:
    c = res.completions[i] if i < len(res.completions) else None
    content = c.content if c else ""
    return {
        "index": i,
        "content": content,
        "tokens": [],
        "id_slot": 0,
        "stop": True,
        "model": res.model,
        "tokens_predicted": len(c.tokens) if c else 0,
        "tokens_evaluated": res.prompt_tokens,
        "generation_settings": {"n_ctx": res.n_ctx},
        "has_new_line": "\n" in content,
        "truncated": res.truncated,
        "stop_type": _llama_stop_type(c.stop_type if c else "none"),
        "stopping_word": c.stopping_word if c else "",
        "tokens_cached": res.tokens_cached,
        "timings": res.timings(),
    }


def _llama_stop_type(t: str) -> str:
    return t if t in ("none", "eos", "limit", "word") else "none"


def select_fields(obj: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """llama.cpp's response_fields: keep only the listed paths; "a/b" becomes the top-level key "a/b"."""
    out: dict[str, Any] = {}
    for f in fields:
        cur: Any = obj
        ok = True
        for part in f.split("/"):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                ok = False
                break
        if ok:
            out[f] = cur
    return out


def _fields(body: dict[str, Any]) -> list[str] | None:
    f = body.get("response_fields")
    if f is None:
        return None
    if not isinstance(f, list) or not all(isinstance(x, str) for x in f):
        raise BadRequest("'response_fields' must be a list of strings")
    return f if f else None


def new_request_id() -> str:
    return f"cmpl-{uuid.uuid4().hex[:24]}"


def _submit(request: web.Request, req: CompletionRequest, endpoint: str) -> Any:
    """engine.submit, plus its telemetry row once the job is answered (or cancelled)."""
    app = request.app
    engine = app[ENGINE_KEY]
    tel = app[TELEMETRY_KEY]
    if tel is not None and req.client_id:
        old = engine.running_for(req.client_id)
        if old is not None:  # the engine cancels it in submit: a newer keystroke superseded it
            app[CANCEL_REASONS_KEY][old.id] = "superseded"
    job = engine.submit(req)
    if tel is not None:
        _record_when_answered(app, tel, job, req, endpoint)
    return job


def _record_when_answered(app: web.Application, tel: Telemetry, job: Job, req: CompletionRequest,
                          endpoint: str) -> None:
    """The job's telemetry row, queued once it is answered (or cancelled)."""
    reasons = app[CANCEL_REASONS_KEY]
    queued: asyncio.Future[None] = job.loop.create_future()
    app[UNRECORDED_KEY].add(queued)

    def _record(fut: asyncio.Future[CompletionResult]) -> None:
        reason = reasons.pop(job.id, "")
        try:
            if not fut.cancelled() and fut.exception() is None:
                report = getattr(job.guard, "report", None)
                tel.record(record_from(endpoint, req, fut.result(),
                                       (time.perf_counter() - job.submitted_at) * 1e3, reason,
                                       secret_kinds=report.blocked if report is not None else None))
        except Exception:  # telemetry never breaks serving
            log.debug("telemetry record failed", exc_info=True)
        finally:
            app[UNRECORDED_KEY].discard(queued)
            queued.set_result(None)

    job.add_done_callback(_record)


def _abandon(request: web.Request, job: Any) -> None:
    """The client went away (handler cancelled) before the answer: cancel the job, free its slot."""
    if not job.done:
        if request.app[TELEMETRY_KEY] is not None:
            request.app[CANCEL_REASONS_KEY].setdefault(job.id, "disconnect")
        job.cancel()


def _with_id(request: web.Request, obj: dict[str, Any], rid: str) -> dict[str, Any]:
    """The request id as an extra reply field when telemetry records it (for POST /v1/feedback)."""
    if request.app[TELEMETRY_KEY] is not None:
        obj["id"] = rid
    return obj


async def _run_job(request: web.Request, req: CompletionRequest, endpoint: str) -> tuple[Any, CompletionResult]:
    job = _submit(request, req, endpoint)
    try:
        res = await job.result()
    finally:
        _abandon(request, job)
    if res.error and not res.completions:
        raise web.HTTPInternalServerError(reason=res.error)
    return job, res


def _client_key(request: web.Request, body: dict[str, Any]) -> str:
    c = request.headers.get("X-Ghostline-Client") or body.get("client_id") or body.get("user") or ""
    return c if isinstance(c, str) else ""


async def handle_llama(request: web.Request, infill: bool) -> web.StreamResponse:
    body = await read_json(request)
    req = llama_request(body, infill, _client_key(request, body))
    req.request_id = new_request_id()
    fields = _fields(body)
    endpoint = "/infill" if infill else "/completion"
    if body.get("stream"):
        return await _stream_llama(request, req, fields, endpoint)
    _, res = await _run_job(request, req, endpoint)
    headers = {"X-Request-Id": req.request_id}
    if res.error:
        resp = error_response(500, res.error, "server_error")
        resp.headers.update(headers)
        return resp
    objs = [llama_object(res, i) for i in range(max(1, len(res.completions)))]
    if fields is not None:
        objs = [select_fields(o, fields) for o in objs]
    else:
        objs = [_with_id(request, o, req.request_id) for o in objs]
    resp = json_response(objs if req.n_cmpl > 1 else objs[0])
    resp.headers.update(headers)
    return resp


async def _sse_start(request: web.Request, rid: str = "") -> web.StreamResponse:
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if rid:
        headers["X-Request-Id"] = rid
    resp = web.StreamResponse(status=200, headers=headers)
    await resp.prepare(request)
    return resp


async def _stream_llama(request: web.Request, req: CompletionRequest, fields: list[str] | None,
                        endpoint: str) -> web.StreamResponse:
    job = _submit(request, req, endpoint)
    resp = await _sse_start(request, req.request_id)
    try:
        async for ev in job:
            if isinstance(ev, TokenEvent):
                obj = {"index": ev.index, "content": ev.text, "tokens": [], "stop": False, "id_slot": 0,
                       "tokens_predicted": 0, "tokens_evaluated": 0}
                await resp.write(f"data: {dumps(obj)}\n\n".encode())
            else:
                for i in range(max(1, len(ev.completions))):
                    final = llama_object(ev, i)
                    final["content"] = ""
                    if fields is not None:
                        final = select_fields(final, fields)
                    else:
                        final = _with_id(request, final, req.request_id)
                    await resp.write(f"data: {dumps(final)}\n\n".encode())
    finally:
        _abandon(request, job)
    await resp.write_eof()
    return resp


async def infill(request: web.Request) -> web.StreamResponse:
    return await handle_llama(request, True)


async def completion(request: web.Request) -> web.StreamResponse:
    return await handle_llama(request, False)


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def props(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    settings = request.app[SETTINGS_KEY]
    fim = getattr(getattr(engine.backend, "lm", None), "fim", None) or getattr(engine.backend, "fim", None)
    return json_response({
        "default_generation_settings": {"n_ctx": engine.n_ctx, "params": {"n_predict": 128, "temperature": 0.0,
                                                                          "top_k": 0, "top_p": 1.0}},
        "total_slots": 1,
        "model_path": settings.get("model_path", ""),
        "model_alias": engine.model_name,
        "backend": engine.kind,
        "fim_format": fim.name if fim else "",
        "build_info": f"ghostline-daemon {settings.get('version', '')}".strip(),
    })


async def models(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    return json_response({
        "object": "list",
        "data": [{"id": engine.model_name, "object": "model", "created": int(engine.started_at),
                  "owned_by": "ghostline", "meta": {"n_ctx_train": engine.n_ctx, "backend": engine.kind}}],
    })


# ----------------------------------------------------------------------------------------------- OpenAI style

def openai_request(body: dict[str, Any], client: str) -> tuple[CompletionRequest, str]:
    req = CompletionRequest()
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("'prompt' must be a string (or a list of one string)")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string")
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise BadRequest("'suffix' must be a string")
    if suffix is None:
        req.raw_prompt = prompt
    else:
        req.prefix, req.suffix = prompt, suffix
    req.n_predict = _num(body, "max_tokens", 128, int)
    if req.n_predict < 0:
        raise BadRequest("'max_tokens' must be >= 0")
    req.temperature = _num(body, "temperature", 0.0)
    req.top_p = _num(body, "top_p", 1.0)
    req.top_k = _num(body, "top_k", 0, int)
    req.n_cmpl = _num(body, "n", 1, int)
    if not 1 <= req.n_cmpl <= 16:
        raise BadRequest("'n' must be between 1 and 16")
    req.stop = _stops(body.get("stop"))
    seed = body.get("seed")
    req.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    req.client_id = client
    req.stream = bool(body.get("stream"))
    model = body.get("model")
    return req, model if isinstance(model, str) else ""


def _finish_reason(stop_type: str) -> str:
    return "length" if stop_type in ("limit", "none") else "stop"


async def v1_completions(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    engine = request.app[ENGINE_KEY]
    req, _model = openai_request(body, _client_key(request, body))
    cid = req.request_id = new_request_id()
    created = int(time.time())
    if body.get("stream"):
        def chunk(ev: Any) -> dict[str, Any]:
            head = {"id": cid, "object": "text_completion", "created": created, "model": engine.model_name}
            if isinstance(ev, TokenEvent):
                return {**head, "choices": [{"text": ev.text, "index": ev.index, "logprobs": None,
                                             "finish_reason": None}]}
            return {**head, "choices": [{"text": "", "index": i, "logprobs": None,
                                         "finish_reason": _finish_reason(c.stop_type)}
                                        for i, c in enumerate(ev.completions)], "usage": _usage(ev)}

        return await _stream_sse(request, req, "/v1/completions", cid, chunk)
    _, res = await _run_job(request, req, "/v1/completions")
    if res.error:
        return error_response(500, res.error, "server_error")
    return json_response({
        "id": cid, "object": "text_completion", "created": created, "model": engine.model_name,
        "choices": [{"text": c.content, "index": i, "logprobs": None, "finish_reason": _finish_reason(c.stop_type)}
                    for i, c in enumerate(res.completions)],
        "usage": _usage(res),
    })


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """OpenAI chat on the local model (daemon.server.chat), streamed as chat.completion.chunk events or whole."""
    body = await read_json(request)
    engine = request.app[ENGINE_KEY]
    try:
        prompt, ends = engine.chat_prompt(chat_messages(body))
        req = chat_request(body, prompt, ends)
    except ValueError as e:  # ChatError, or no chat on this backend
        raise BadRequest(str(e)) from e
    req.client_id = _client_key(request, body)
    cid = req.request_id = "chat" + new_request_id()
    if not req.stream:
        _, res = await _run_job(request, req, "/v1/chat/completions")
        if res.error:
            return error_response(500, res.error, "server_error")
        return json_response(chat_object(cid, engine.model_name, res))
    def chunk(ev: Any) -> dict[str, Any]:
        if isinstance(ev, TokenEvent):
            return chat_chunk(cid, engine.model_name, {"content": ev.text})
        stop = ev.completions[0].stop_type if ev.completions else "none"
        return chat_chunk(cid, engine.model_name, {}, chat_finish_reason(stop))

    first = chat_chunk(cid, engine.model_name, {"role": "assistant"})
    return await _stream_sse(request, req, "/v1/chat/completions", cid, chunk, first=first)


async def _stream_sse(request: web.Request, req: CompletionRequest, endpoint: str, cid: str,
                      chunk: Callable[[Any], dict[str, Any]], first: dict[str, Any] | None = None) -> web.StreamResponse:
    """An OpenAI-style event stream: `first`, a chunk per job event, then [DONE]; the job let go however it ends."""
    job = _submit(request, req, endpoint)
    resp = await _sse_start(request, cid)
    try:
        if first is not None:
            await resp.write(f"data: {dumps(first)}\n\n".encode())
        async for ev in job:
            await resp.write(f"data: {dumps(chunk(ev))}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
    finally:
        _abandon(request, job)
    await resp.write_eof()
    return resp


def _usage(res: CompletionResult) -> dict[str, int]:
    return {"prompt_tokens": res.prompt_tokens, "completion_tokens": res.predicted_n,
            "total_tokens": res.prompt_tokens + res.predicted_n}


# ------------------------------------------------------------------------------------------------ native ghost

def ghost_request(body: dict[str, Any], client: str) -> CompletionRequest:
    req = CompletionRequest()
    rid = body.get("id")
    if rid is not None:
        if not isinstance(rid, str) or not rid or len(rid) > 128:
            raise BadRequest("'id' must be a non-empty string of at most 128 characters")
        req.request_id = rid
    else:
        req.request_id = new_request_id()
    req.prefix = _str(body, "prefix")
    req.suffix = _str(body, "suffix")
    req.filename = _str(body, "filename")
    req.repo_name = _str(body, "repo_name")
    extra = body.get("extra", body.get("input_extra"))
    req.extra = _extra(extra)
    req.n_predict = _num(body, "n_predict", 64, int)
    req.deadline_ms = _num(body, "deadline_ms", 0.0)
    _generation_fields(body, req)
    sau = body.get("stop_at_unit", True)
    req.stop_at_unit = bool(sau)
    req.client_id = client or _str(body, "document")
    return req


async def ghost(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    engine = request.app[ENGINE_KEY]
    client = _client_key(request, body)
    req = ghost_request(body, client)
    if req.request_id in engine._jobs:
        raise BadRequest(f"request id {req.request_id!r} is already in use")
    job = _submit(request, req, "/v1/ghost")
    resp = await _sse_start(request, job.id)
    await resp.write(f"event: start\ndata: {dumps({'id': job.id})}\n\n".encode())
    try:
        async for ev in job:
            if isinstance(ev, TokenEvent):
                await resp.write(f"event: token\ndata: {dumps({'index': ev.index, 'text': ev.text})}\n\n".encode())
            else:
                out = {
                    "id": job.id, "content": ev.content, "completions": [
                        {"content": c.content, "stop_type": c.stop_type} for c in ev.completions],
                    "source": ev.source, "cancelled": ev.cancelled, "truncated": ev.truncated,
                    "tokens_cached": ev.tokens_cached, "tokens_reused": ev.tokens_reused, "ttft_ms": ev.ttft_ms,
                    "timings": ev.timings(), "model": ev.model,
                }
                name = "cancelled" if ev.cancelled else "done"
                await resp.write(f"event: {name}\ndata: {dumps(out)}\n\n".encode())
    finally:
        _abandon(request, job)
    await resp.write_eof()
    return resp


async def ghost_cancel(request: web.Request) -> web.Response:
    if request.method == "DELETE":
        rid = request.match_info["rid"]
    else:
        body = await read_json(request)
        rid = body.get("id")
        if not isinstance(rid, str):
            raise BadRequest("'id' must be a string")
    reasons = request.app[CANCEL_REASONS_KEY]
    marked = request.app[TELEMETRY_KEY] is not None and rid not in reasons
    if marked:
        reasons[rid] = "explicit"
    ok = request.app[ENGINE_KEY].cancel(rid)
    if marked and not ok:
        reasons.pop(rid, None)
    return json_response({"id": rid, "cancelled": ok})


# ---------------------------------------------------------------------------------------------------- feedback

async def feedback(request: web.Request) -> web.Response:
    """POST /v1/feedback {"id": request id, "event": "accepted"|"typed_through"|"dismissed", "chars": n}: the
    outcome of a shown completion, recorded in the local telemetry (an unknown id is kept, unmatched). An
    accepted suggestion starts a background prefetch of the next one."""
    body = await read_json(request)
    rid = body.get("id")
    if not isinstance(rid, str) or not rid or len(rid) > 128:
        raise BadRequest("'id' must be a non-empty string of at most 128 characters")
    event = body.get("event")
    if event not in EVENTS:
        raise BadRequest(f"'event' must be one of {', '.join(EVENTS)}")
    chars = _num(body, "chars", 0, float)
    if chars < 0 or chars != int(chars):
        raise BadRequest("'chars' must be a non-negative integer")
    tel = request.app[TELEMETRY_KEY]
    recorded = tel.feedback(rid, event, int(chars)) if tel is not None else False
    prefetching = event == "accepted" and request.app[ENGINE_KEY].accepted(rid)
    return json_response({"id": rid, "event": event, "recorded": recorded, "prefetching": prefetching})


# ----------------------------------------------------------------------------------------------------- metrics

def _quantile(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


async def metrics(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    lines: list[str] = []
    m = engine.metrics()
    for k in sorted(m):
        name = f"ghostline_{k}"
        kind = "gauge" if k in ("active_requests", "kv_cache_entries", "kv_cache_bytes",
                                 "classical_files_indexed") else "counter"
        lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name} {float(m[k]):g}")
    for name, xs in (("ghostline_request_latency_ms", list(engine.latencies_ms)),
                     ("ghostline_cancel_latency_ms", list(engine.cancel_latencies_ms)),
                     # cancel -> the model worker let go of the job (its compute stopped, its KV salvaged)
                     ("ghostline_cancel_drop_latency_ms", list(engine.drop_latencies_ms))):
        lines.append(f"# TYPE {name} summary")
        for q in (0.5, 0.9, 0.99):
            lines.append(f'{name}{{quantile="{q}"}} {_quantile(xs, q):.3f}')
        lines.append(f"{name}_sum {sum(xs):.3f}")
        lines.append(f"{name}_count {len(xs)}")
    tel = request.app[TELEMETRY_KEY]
    if tel is not None:
        for k in ("accepted", "typed_through", "dismissed"):
            lines.append(f"# TYPE ghostline_feedback_{k}_total counter")
            lines.append(f"ghostline_feedback_{k}_total {tel.counters[k]}")
        for k in ("recorded", "dropped"):
            lines.append(f"# TYPE ghostline_telemetry_{k}_total counter")
            lines.append(f"ghostline_telemetry_{k}_total {tel.counters[k]}")
    auth = request.app[AUTH_KEY]
    for why in ("missing", "wrong"):  # requests refused for a missing / wrong bearer token
        lines.append(f"# TYPE ghostline_auth_rejected_{why}_total counter")
        lines.append(f"ghostline_auth_rejected_{why}_total {auth[why]}")
    lines.append("# TYPE ghostline_uptime_seconds gauge")
    lines.append(f"ghostline_uptime_seconds {time.time() - engine.started_at:.1f}")
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


async def daemon_status(request: web.Request) -> web.Response:
    """GET /v1/status: what `agent daemon status` shows besides the pid file -- requests refused for a missing or
    wrong token, secrets blocked, the result cache."""
    engine = request.app[ENGINE_KEY]
    c = engine.counters
    return json_response({
        "model": engine.model_name, "backend": engine.kind, "uptime_s": round(time.time() - engine.started_at, 1),
        "requests": int(c["requests_total"]), "auth_rejected": dict(request.app[AUTH_KEY]),
        "secrets_blocked": {k[len("secrets_blocked_"):]: int(v) for k, v in c.items()
                            if k.startswith("secrets_blocked_")},
        "cache": {"hits": int(c["cache_hits"]), "typed_through": int(c["cache_typed_through"]),
                  "entries": len(engine.results), "prefetched": int(c.get("prefetch_started", 0))},
    })


# --------------------------------------------------------------------------------------------------------- app

def create_app(engine: Engine, *, token: str | None, allowed_hosts: set[str] | None = None,
               max_body: int = MAX_BODY, model_path: str = "", version: str = "",
               telemetry: Telemetry | None = None) -> web.Application:
    """The API. With `telemetry`, requests are recorded (its writer is started here and closed, after writing
    what is queued, when the app is cleaned up)."""
    app = web.Application(middlewares=[guard], client_max_size=max_body)
    app[ENGINE_KEY] = engine
    app[TELEMETRY_KEY] = telemetry
    app[CANCEL_REASONS_KEY] = {}
    app[UNRECORDED_KEY] = set()
    app[AUTH_KEY] = {"missing": 0, "wrong": 0, "last_at": 0.0, "last_reason": ""}
    app[SETTINGS_KEY] = {"token": token or "", "allowed_hosts": frozenset(h.lower() for h in (allowed_hosts or ())),
                         "max_body": max_body, "model_path": model_path, "version": version}
    app.router.add_get("/health", health)
    app.router.add_get("/props", props)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/models", models)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/status", daemon_status)
    app.router.add_post("/infill", infill)
    app.router.add_post("/completion", completion)
    app.router.add_post("/completions", completion)
    app.router.add_post("/v1/completions", v1_completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/ghost", ghost)
    app.router.add_post("/v1/ghost/cancel", ghost_cancel)
    app.router.add_delete("/v1/ghost/{rid}", ghost_cancel)
    app.router.add_post("/v1/feedback", feedback)

    async def _close(_app: web.Application) -> None:
        await engine.aclose()

    app.on_shutdown.append(_close)
    if telemetry is not None:
        telemetry.start()
        # outcomes the engine infers for clients that never report them (llama.vim)
        engine.on_outcome = lambda rid, event, chars: telemetry.feedback(rid, event, chars)

        async def _close_telemetry(_app: web.Application) -> None:
            # the answers of the jobs engine.aclose() cancelled are on their way through the loop: their rows
            # go in before the writer closes
            unrecorded = list(app[UNRECORDED_KEY])
            if unrecorded:
                await asyncio.wait(unrecorded, timeout=5.0)
            await asyncio.to_thread(telemetry.close)

        app.on_cleanup.append(_close_telemetry)
    return app


async def start_server(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving; returns the runner (await runner.cleanup() to stop). handler_cancellation lets a client
    that hangs up (llama.vim stops its curl job on the next keystroke) cancel its request at once."""
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    raise RuntimeError("server is not listening")


def allowed_hosts_for(bind: str) -> set[str]:
    """Host header values accepted besides loopback: the bound address, and for a wildcard bind (0.0.0.0, ::)
    this machine's host names and addresses."""
    if bind in ("127.0.0.1", "localhost", "::1"):
        return set()
    out = {bind.lower()}
    if bind in ("0.0.0.0", "::", ""):
        import socket

        name = socket.gethostname()
        out |= {name.lower(), socket.getfqdn().lower()}
        try:
            out |= {ai[4][0].lower() for ai in socket.getaddrinfo(name, None)}
        except OSError:
            pass
    return out


async def serve_forever(engine: Engine, host: str, port: int, token: str | None, *, model_path: str = "",
                        on_ready: Any = None, telemetry: Telemetry | None = None) -> None:
    engine.start()
    allowed = allowed_hosts_for(host)
    app = create_app(engine, token=token, allowed_hosts=allowed, model_path=model_path, telemetry=telemetry)
    runner = await start_server(app, host, port)
    if on_ready is not None:
        on_ready(bound_port(runner))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
