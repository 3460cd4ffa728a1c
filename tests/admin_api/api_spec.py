"""The admin API's contract, docs/openapi/admin-api.yaml, as the tests use it: its operations, and
the check that a response is one the contract allows (a declared status, a JSON body matching the
declared schema, its $refs resolved against the spec, formats such as int64 and byte checked).
"""

import dataclasses
import functools
import json
import pathlib

import referencing
import referencing.jsonschema
import yaml
from openapi_schema_validator import OAS30Validator, oas30_format_checker

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi" / "admin-api.yaml"
SPEC_URI = "urn:im:admin-api"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
SHOWN_BODY_BYTES = 600


@functools.cache
def spec():
    return yaml.safe_load(SPEC_PATH.read_text())


def pointer_part(name):
    """A name as one step of a JSON pointer (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def resolve(node, pointer):
    """(node, its pointer) with a local $ref followed: where the object really lives."""
    while "$ref" in node:
        pointer = node["$ref"]
        node = spec()
        for part in pointer.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


@dataclasses.dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # the template: /v1/groups/{group_id}
    operation_id: str
    pointer: str  # JSON pointer of the operation object in the spec

    @property
    def definition(self):
        return resolve({"$ref": self.pointer}, self.pointer)[0]

    @property
    def request_body(self):
        """The requestBody object, or None."""
        body = self.definition.get("requestBody")
        return None if body is None else resolve(body, "")[0]

    @property
    def request_schema_pointer(self):
        """The JSON pointer of its JSON request body's schema."""
        _, pointer = resolve(self.definition["requestBody"], f"{self.pointer}/requestBody")
        return f"{pointer}/content/application~1json/schema"

    def declared_path_parameters(self):
        """{name: JSON pointer of its schema} of its path parameters, whether declared on the
        path or on the operation."""
        item_pointer = f"#/paths/{pointer_part(self.path)}"
        declared = [(p, f"{item_pointer}/parameters/{i}")
                    for i, p in enumerate(spec()["paths"][self.path].get("parameters", []))]
        declared += [(p, f"{self.pointer}/parameters/{i}")
                     for i, p in enumerate(self.definition.get("parameters", []))]
        found = {}
        for parameter, pointer in declared:
            parameter, pointer = resolve(parameter, pointer)
            if parameter["in"] == "path":
                found[parameter["name"]] = f"{pointer}/schema"
        return found

    @property
    def path_parameters(self):
        return sorted(self.declared_path_parameters())

    def url_path(self, **values):
        return self.path.format(**values)

    def __str__(self):
        return f"{self.method} {self.path} ({self.operation_id})"


@functools.cache
def operations():
    found = []
    for path, item in spec()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                found.append(Operation(method.upper(), path, item[method]["operationId"],
                                       f"#/paths/{pointer_part(path)}/{method}"))
    return tuple(found)


def operation(operation_id):
    for op in operations():
        if op.operation_id == operation_id:
            return op
    raise KeyError(f"the spec has no operation {operation_id}")


def operation_at(method, path):
    """The operation of a method (any case) and a path template, or None."""
    for op in operations():
        if (op.method, op.path) == (method.upper(), path):
            return op
    return None


@functools.cache
def schema_validator(schema_pointer):
    registry = referencing.Registry().with_resource(
        SPEC_URI, referencing.jsonschema.DRAFT4.create_resource(spec()))
    return OAS30Validator({"$ref": f"{SPEC_URI}{schema_pointer}"}, registry=registry,
                          format_checker=oas30_format_checker)


def violations(schema_pointer, instance):
    """What is wrong with an instance of the schema at a pointer of the spec: [] when nothing."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(the body)'}: {e.message}"
            for e in schema_validator(schema_pointer).iter_errors(instance)]


def minimal_instance(schema_pointer, sample_string):
    """The smallest instance of a schema: an object's required properties only, an array of one
    item, a number's minimum, an enum's first value, and sample_string for every string (the
    caller checks with violations() that it fits the patterns)."""
    schema, pointer = resolve({"$ref": schema_pointer}, schema_pointer)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: minimal_instance(f"{pointer}/properties/{pointer_part(name)}", sample_string)
                for name in schema.get("required", [])}
    if kind == "array":
        item = minimal_instance(f"{pointer}/items", sample_string)
        return [item] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return sample_string


def shown(data):
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data or "")
    if len(text) > SHOWN_BODY_BYTES:
        return f"{text[:SHOWN_BODY_BYTES]}... ({len(text)} bytes)"
    return text


def exchange(response):
    """The request and the response, for a failure message."""
    request = response.request
    return (f"\n  request: {request.method} {request.url}\n    body: {shown(request.body)}"
            f"\n  response: {response.status_code}\n    body: {shown(response.content)}")


def declared_response(op, status):
    """(the response object, its JSON pointer) the spec declares for a status, or (None, None)."""
    responses = op.definition["responses"]
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            return resolve(responses[key], f"{op.pointer}/responses/{key}")
    return None, None


def check_response(op, response):
    """Fails unless the spec allows this response to this operation; returns its JSON body."""
    declared, pointer = declared_response(op, response.status_code)
    assert declared is not None, (
        f"{op}: status {response.status_code} is not one the spec declares "
        f"({', '.join(op.definition['responses'])}){exchange(response)}")
    if "content" not in declared:
        assert not response.content, f"{op}: a body where the spec has none{exchange(response)}"
        return None
    content_type = response.headers.get("Content-Type", "")
    assert content_type.split(";")[0].strip() == "application/json", (
        f"{op}: Content-Type '{content_type}', not application/json{exchange(response)}")
    try:
        body = response.json()
    except json.JSONDecodeError as error:
        raise AssertionError(f"{op}: the body is not JSON ({error}){exchange(response)}") from None
    problems = violations(f"{pointer}/content/application~1json/schema", body)
    assert not problems, (f"{op}: the body does not match the spec's schema:\n    "
                          + "\n    ".join(problems) + exchange(response))
    return body
