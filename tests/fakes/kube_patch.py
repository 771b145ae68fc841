"""The three PATCH formats of the Kubernetes API, applied to plain JSON documents for the fake API server.

- JSON merge patch (RFC 7386, `application/merge-patch+json`): maps merge, `null` deletes, lists replace.
- JSON patch (RFC 6902, `application/json-patch+json`): add, remove, replace, move, copy, test.
- Strategic merge patch (`application/strategic-merge-patch+json`, built-in kinds only): a merge patch
  whose lists of named things merge by their key (containers by name, ports by port, ...) and which
  understands the `$patch: delete | replace` directives. Other lists replace, as in a merge patch.
"""
from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """The patch cannot be applied; `status` is the HTTP code the API server would answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


# --- RFC 7386 --------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 --------------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"path {path!r} does not exist (no {part!r})")
    return node, parts[-1]


def _get(doc: Any, path: str) -> Any:
    node = doc
    for part in _pointer(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"path {path!r} does not exist")
    return node


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else (int(last) if last.isdigit() else -1)
        if not 0 <= index <= len(parent):
            raise PatchError(f"index {last!r} of {path!r} is out of range")
        parent.insert(index, copy.deepcopy(value))
    else:
        raise PatchError(f"cannot add at {path!r}: the parent is not an object or array")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise PatchError(f"cannot remove {path!r}: it does not exist")


def _go_type(value: Any) -> str:
    """How Go's encoding/json names a JSON value's type in its errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "null"


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch (a list of operations) to a copy of `doc`."""
    if not isinstance(operations, list):
        # What the API server answers when a JSON object is sent as a JSON patch.
        raise PatchError(f"json: cannot unmarshal {_go_type(operations)} into Go value of type jsonpatch.Patch",
                         status=400)
    result = copy.deepcopy(doc)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {number}: needs 'op' and 'path'", status=400)
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {number} ({kind} {path}): missing 'value'", status=400)
        if kind == "add":
            result = _add(result, path, op["value"])
        elif kind == "remove":
            result, _ = _remove(result, path)
        elif kind == "replace":
            _get(result, path)  # must exist
            result, _ = _remove(result, path) if _pointer(path) else (result, None)
            result = _add(result, path, op["value"])
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {number} ({kind} {path}): missing 'from'", status=400)
            value = copy.deepcopy(_get(result, op["from"]))
            if kind == "move":
                result, _ = _remove(result, op["from"])
            result = _add(result, path, value)
        elif kind == "test":
            if _get(result, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: it is {_get(result, path)!r}, not {op['value']!r}")
        else:
            raise PatchError(f"operation {number}: unknown op {kind!r}", status=400)
    return result


# --- strategic merge patch ---------------------------------------------------------------------------------

# patchMergeKey of the list fields the fake knows (from the Kubernetes API types); other lists replace.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "metrics": None,  # HPA metrics have no merge key: replaced
}


def _merge_key(field: str | None, items: list[Any]) -> str | None:
    if field == "ports":  # container ports merge by containerPort, service ports by port
        dicts = [i for i in items if isinstance(i, dict)]
        return "containerPort" if dicts and all("containerPort" in i for i in dicts) else "port"
    return MERGE_KEYS.get(field or "")


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _merge_list(old: list[Any], new: list[Any], key: str) -> list[Any]:
    out = copy.deepcopy(old)
    for item in new:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"strategic merge patch: list item {item!r} has no merge key {key!r}")
        index = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append(_strip_directives(item))
        else:
            out[index] = strategic_merge_patch(out[index], item)
    return out


def strategic_merge_patch(target: Any, patch: Any, field: str | None = None) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(_strip_directives(patch))
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith("$"):
            continue  # $setElementOrder and friends: ordering only
        if value is None:
            result.pop(name, None)
            continue
        key = _merge_key(name, value) if isinstance(value, list) else None
        if key is not None and isinstance(result.get(name), list):
            result[name] = _merge_list(result[name], value, key)
        else:
            result[name] = strategic_merge_patch(result.get(name), value, name)
    return result
