"""Checks a request body as sent on the wire against the AWS service model
that botocore publishes (the same model the AWS SDKs are generated from).

    python3 tests/contract/aws_model.py SERVICE OPERATION < body.json

The body is the JSON the SDK sent (restJson wire names, e.g. `nameModifier`).
Each wire name is mapped to the model's member name through the member's
`locationName`; a name the model does not have is an error. The result is
then checked with botocore's own `ParamValidator` (required members, types,
minimum lengths and values), and here for what it leaves out: enum values,
maximum values and patterns (e.g. StaticKeyValue `^[A-Za-z0-9]{32}$`; a
pattern Python's `re` cannot read, such as a Java `\p{…}` class, is skipped). Prints one line per problem and exits 1, or prints
`ok` and exits 0.
"""

import json
import re
import sys

import botocore.session
from botocore.validate import ParamValidator


def to_members(shape, value, path, problems):
    """Wire names to member names, recursively; enum and range checks."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object for {shape.name}")
            return value
        by_wire = {
            m.serialization.get("name", name): (name, m)
            for name, m in shape.members.items()
        }
        out = {}
        for key, v in value.items():
            if key not in by_wire:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
                continue
            name, member = by_wire[key]
            out[name] = to_members(member, v, f"{path}.{key}", problems)
        return out
    if kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list")
            return value
        return [
            to_members(shape.member, v, f"{path}[{i}]", problems)
            for i, v in enumerate(value)
        ]
    if kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map")
            return value
        return {k: to_members(shape.value, v, f"{path}.{k}", problems) for k, v in value.items()}
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        problems.append(f"{path}: {value!r} is not one of {shape.name}'s values {enum}")
    pattern = shape.metadata.get("pattern")
    if pattern and isinstance(value, str):
        try:
            if not re.search(pattern, value):
                problems.append(f"{path}: {value!r} does not match {shape.name}'s pattern {pattern}")
        except re.error:
            pass
    maximum = shape.metadata.get("max")
    if maximum is not None:
        size = len(value) if isinstance(value, (str, list)) else value
        if isinstance(size, (int, float)) and size > maximum:
            problems.append(f"{path}: {value!r} is above {shape.name}'s maximum {maximum}")
    return value


def main():
    service, operation = sys.argv[1], sys.argv[2]
    body = json.load(sys.stdin)
    model = botocore.session.get_session().get_service_model(service)
    shape = model.operation_model(operation).input_shape
    problems = []
    params = to_members(shape, body, operation, problems)
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems.extend(line.strip() for line in report.generate_report().splitlines() if line.strip())
    if problems:
        for p in problems:
            print(p)
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
