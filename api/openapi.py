"""/openapi.json as the contract needs it: the bearer security scheme, the error
responses every operation can give in the one error shape, and `Idempotency-Key` with its
pattern, required where the route declares `Key.REQUIRED` (api/commands.py). FastAPI derives the
rest from the routes, their response models included; this adds what it cannot see (the routes
answer errors through api/errors.py, and the reads' response models are attached here:
api/schemas.py `READ_MODELS`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api.commands import KEY_RULE, Key
from api.deps import IDEMPOTENCY_KEY_PATTERN
from api.errors import STATUS_BY_CODE
from api.schemas import READ_MODELS

SECURITY_SCHEME = "bearer"
ERROR_SCHEMA_REF = "#/components/schemas/Error"
ERROR_SCHEMA = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "string", "enum": sorted(STATUS_BY_CODE)},
            "message": {"type": "string"},
            "details": {"type": "object"},
        },
    }},
}
ERRORS_OF_PEOPLE_WITH_TOKENS = {
    "401": "no valid bearer token (`unauthorized`)",
    "403": "this role, account or community may not do this (`forbidden`)",
    "404": "no such thing (`not_found`)",
    "409": "refused by a rule, or the Idempotency-Key was used for another request (see the codes)",
    "422": "the request is not valid; `details` names the field (`validation_error`)",
    "413": "the body is over the size limit (`payload_too_large`)",
    "429": "too many attempts (`rate_limited`); see Retry-After",
    "503": "the database is away (`unavailable`) or a commit's outcome is unknown (`outcome_unknown`): "
           "retry after Retry-After, with the same Idempotency-Key",
}
ERRORS_OF_ANYONE = ("404", "422", "503")
PUBLIC_PATHS = ("/v1/public/", "/v1/auth/sign-in", "/healthz", "/metrics")  # no token needed
HTML_SUFFIX = ".html"
PUBLIC_REFUSALS = {"/v1/auth/sign-in": ("409", "413", "429")}  # a used or unknown code; guessing
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200,
                          "pattern": IDEMPOTENCY_KEY_PATTERN.pattern}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")  # our 422s have the Error shape


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = complete(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {SECURITY_SCHEME: {
        "type": "http", "scheme": "bearer", "description": "a token from POST /v1/staff, POST /v1/accounts or "
                                                           "JINDOU_ADMIN_TOKEN",
    }}
    for path, item in schema.get("paths", {}).items():
        public = path.startswith(PUBLIC_PATHS)
        for method, operation in item.items():
            _complete_operation(operation, path, public)
            if method == "get" and path in READ_MODELS:
                _declare_response_model(schemas, operation, READ_MODELS[path])
    return schema


def _declare_response_model(schemas: dict[str, Any], operation: dict[str, Any], model: type[BaseModel]) -> None:
    model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(model_schema.pop("$defs", {}))
    schemas[model.__name__] = model_schema
    success = operation["responses"].pop("200", {})
    operation["responses"]["200"] = {
        "description": success.get("description", "Successful Response"),
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }


def _complete_operation(operation: dict[str, Any], path: str, public: bool) -> None:
    if not public:
        operation["security"] = [{SECURITY_SCHEME: []}]
    key = Key(operation.pop(KEY_RULE, Key.OPTIONAL.value))  # a command route's; the others take it optionally
    parameters = []
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == "authorization":
            continue  # the security scheme says it
        if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key":
            parameter["schema"] = IDEMPOTENCY_KEY_SCHEMA
            parameter["required"] = key is Key.REQUIRED
            parameter["description"] = "the same key and body replay the first outcome (Idempotent-Replayed: true)"
        parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)
    responses = operation.setdefault("responses", {})
    codes = (ERRORS_OF_ANYONE + PUBLIC_REFUSALS.get(path, ())) if public else tuple(ERRORS_OF_PEOPLE_WITH_TOKENS)
    codes = tuple(code for code in codes if code != "413" or "requestBody" in operation)
    # A page answers a person: what it can tell (a Chinese "no such month") is a page too; a query
    # it cannot even parse gets the error shape.
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}}
    if path.endswith(HTML_SUFFIX):
        content = {"text/html": {"schema": {"type": "string"}}} | content
    for code in codes:
        responses[code] = {"description": ERRORS_OF_PEOPLE_WITH_TOKENS[code], "content": content}
