#!/usr/bin/env python3
"""Validates FHIR R4 JSON resources against the official R4 JSON schema (fhir.schema.json).

Usage: validate.py [--plain] --schema PATH/fhir.schema.json FILE.json [FILE.json ...]

Prints one JSON object per file on stdout: {"file": ..., "valid": bool, "errors": [...]}.
Exit status: 0 all valid, 1 some invalid, 2 usage error or jsonschema missing.

Besides the schema (structure, cardinality, value sets bound "required", primitive
regexes), rules of the base resource the schema cannot express are checked: dom-2,
dom-3, dom-4 (contained resources) and "#id" references resolving to a contained
resource.

Needs the PyPI package jsonschema (4.x). The schema comes from tests/fhir/fetch_schema.sh.
"""

import argparse
import json
import sys

try:
    import jsonschema
except ImportError:  # pragma: no cover - reported to the caller
    print("validate.py: the Python package jsonschema is not installed", file=sys.stderr)
    sys.exit(2)


def local_refs(node, out, skip_contained=True):
    """Collects every local reference ('#id', or '' for '#', the container)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "contained" and skip_contained:
                continue
            if key == "reference" and isinstance(value, str) and value.startswith("#"):
                out.add(value[1:])
            else:
                local_refs(value, out, skip_contained)
    elif isinstance(node, list):
        for item in node:
            local_refs(item, out, skip_contained)


def invariants(resource):
    """dom-2/dom-4 (no nested contained, no meta.versionId/lastUpdated in a contained
    resource), dom-3 as R4 states it (a contained resource is referenced from elsewhere in
    the resource, contained siblings included, or refers to its container with '#'), and
    every '#id' reference resolving to a contained resource."""
    errors = []
    if not isinstance(resource, dict):
        return errors
    contained = [c for c in resource.get("contained") or [] if isinstance(c, dict)]
    ids = [c.get("id") for c in contained]
    everywhere = set()
    local_refs(resource, everywhere, skip_contained=False)
    for c in contained:
        cid = c.get("id")
        meta = c.get("meta") or {}
        if cid is None:
            errors.append("contained resource without id")
            continue
        if c.get("contained"):
            errors.append(f"dom-2: contained resource #{cid} has contained resources")
        if "versionId" in meta or "lastUpdated" in meta:
            errors.append(f"dom-4: contained resource #{cid} has meta.versionId or lastUpdated")
        own = set()
        local_refs(c, own, skip_contained=False)
        others = set()
        local_refs({k: v for k, v in resource.items() if k != "contained"}, others)
        for o in contained:
            if o is not c:
                local_refs(o, others, skip_contained=False)
        if cid not in others and "" not in own:
            errors.append(f"dom-3: contained resource #{cid} is not referenced from the resource")
    if len(set(ids)) != len(ids):
        errors.append("contained resources with the same id")
    for r in sorted(everywhere):
        if r and r not in ids:
            errors.append(f"local reference #{r} does not resolve to a contained resource")
    return errors


def fast_validator_class(schema):
    """Draft6Validator whose `oneOf` over every resource type (the root and ResourceList)
    dispatches on `resourceType` instead of trying all 146 branches.

    Same verdicts as the plain validator: every branch is a `$ref` to a resource
    definition that requires `resourceType` with a `const` of its own name (checked here),
    so at most the branch named by `resourceType` can match.
    """
    mapping = schema.get("discriminator", {}).get("mapping", {})
    defs = schema["definitions"]
    for name, ref in mapping.items():
        d = defs[name]
        if (
            ref != f"#/definitions/{name}"
            or d["properties"]["resourceType"].get("const") != name
            or "resourceType" not in d.get("required", [])
        ):
            return jsonschema.Draft6Validator  # precondition fails: no shortcut
    targets = set(mapping.values())
    plain_one_of = jsonschema.Draft6Validator.VALIDATORS["oneOf"]

    def one_of(validator, branches, instance, subschema):
        refs = [b.get("$ref") if isinstance(b, dict) and len(b) == 1 else None for b in branches]
        if not refs or not all(r in targets for r in refs):
            yield from plain_one_of(validator, branches, instance, subschema)
            return
        rtype = instance.get("resourceType") if isinstance(instance, dict) else None
        ref = mapping.get(rtype) if isinstance(rtype, str) else None
        if ref is None or ref not in refs:
            yield jsonschema.ValidationError(
                f"resourceType {rtype!r} is not one of the resource types allowed here"
            )
            return
        yield from validator.descend(instance, {"$ref": ref})

    return jsonschema.validators.extend(jsonschema.Draft6Validator, {"oneOf": one_of})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument(
        "--plain", action="store_true", help="the plain Draft6Validator (slow; same verdicts)"
    )
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    with open(args.schema, encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.Draft6Validator if args.plain else fast_validator_class(schema)
    validator = cls(schema)
    by_type = {}
    all_valid = True
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as f:
                resource = json.load(f)
        except (OSError, ValueError) as e:
            errors = [f"cannot read JSON: {e}"]
        else:
            errors = []
            if not validator.is_valid(resource):
                # The root is a oneOf over every resource type: explain with the errors of
                # the resource's own definition, when it names a known one.
                rtype = resource.get("resourceType") if isinstance(resource, dict) else None
                if not isinstance(rtype, str):
                    rtype = None
                v = by_type.get(rtype)
                if v is None and rtype in schema["definitions"]:
                    v = by_type[rtype] = cls(
                        {"$ref": f"#/definitions/{rtype}", "definitions": schema["definitions"]}
                    )
                for err in (v or validator).iter_errors(resource):
                    best = jsonschema.exceptions.best_match([err] + list(err.context or []))
                    where = "/".join(str(p) for p in best.absolute_path) or "(root)"
                    errors.append(f"{where}: {best.message[:300]}")
                if not errors:
                    errors.append("(root): does not match the R4 schema")
            errors += invariants(resource)
        valid = not errors
        all_valid &= valid
        print(json.dumps({"file": path, "valid": valid, "errors": errors}, ensure_ascii=False))
    sys.exit(0 if all_valid else 1)


if __name__ == "__main__":
    main()
