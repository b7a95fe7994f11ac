#!/usr/bin/env python3
"""Runs the vectors' own CloudFront check (`emulate` in
tests/fixtures/cloudfront/gen_vectors.py) over playgate's outputs.

Reads a JSON list of {id, kind, signed_url|request_url, policy_json,
expires, signature, hash_algorithm, pub} on stdin; prints {id: bool} for
the wire form. botocore is only needed to *generate* vectors, so a stub
stands in for it when the module is imported here.
"""
import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "cloudfront")

stub = types.ModuleType("botocore")
stub.__version__ = "stub"
signers = types.ModuleType("botocore.signers")
signers.CloudFrontSigner = object
stub.signers = signers
sys.modules.setdefault("botocore", stub)
sys.modules.setdefault("botocore.signers", signers)
sys.path.insert(0, FIXTURES)
import gen_vectors  # noqa: E402

results = {}
for item in json.load(sys.stdin):
    pub = gen_vectors.load_public(item["pub"])
    case = {"kind": item["kind"], "request_url": item.get("request_url")}
    out = {k: item.get(k) for k in ("signed_url", "policy_json", "expires", "signature", "hash_algorithm")}
    r = gen_vectors.emulate(case, out, pub, lambda u: u)
    results[item["id"]] = bool(r.get("wire"))
print(json.dumps(results))
