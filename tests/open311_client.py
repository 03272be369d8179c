#!/usr/bin/env python3
"""An independent Open311 GeoReport v2 client for Precinct's e2e test (ADR 0031).

Only Python's standard library: urllib for HTTP, xml.etree for the XML format (the PyPI
package `open311` 1.1 is Python 2 code and does not import on Python 3). Walks the XML
endpoints the way a GeoReport v2 client does, checks their shape, and prints a JSON
summary on stdout for the Rust test to compare. Exits non-zero on any surprise.

Usage: open311_client.py http://127.0.0.1:PORT/open311/v2
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

TIMEOUT = 10


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def call(url, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
            return res.status, res.headers.get("Content-Type", ""), res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def xml(url, data=None, expect=200):
    status, ctype, body = call(url, data)
    if status != expect:
        fail(f"{url}: {status} (expected {expect}): {body!r}")
    if not ctype.startswith("text/xml"):
        fail(f"{url}: content type {ctype}")
    return ET.fromstring(body)


def text(el, tag):
    child = el.find(tag)
    if child is None:
        fail(f"<{el.tag}> has no <{tag}>: {ET.tostring(el)!r}")
    return child.text


def main():
    base = sys.argv[1].rstrip("/")
    out = {}

    disc = xml(f"{base}/discovery.xml")
    if disc.tag != "discovery":
        fail(f"discovery root {disc.tag}")
    endpoint = disc.find("endpoints/endpoint")
    if text(endpoint, "specification") != "http://wiki.open311.org/GeoReport_v2":
        fail("specification")
    formats = [f.text for f in endpoint.findall("formats/format")]
    if "text/xml" not in formats:
        fail(f"formats {formats}")

    services = xml(f"{base}/services.xml")
    if services.tag != "services":
        fail(f"services root {services.tag}")
    codes = []
    for s in services.findall("service"):
        for field in ("service_code", "service_name", "metadata", "type"):
            text(s, field)
        for field in ("keywords", "group"):  # may be empty
            if s.find(field) is None:
                fail(f"<service> has no <{field}>")
        if text(s, "metadata") != "false":
            fail("metadata must be false")
        codes.append(text(s, "service_code"))
    out["services"] = codes

    definition = xml(f"{base}/services/theft-1.xml")
    if definition.tag != "service_definition" or text(definition, "service_code") != "theft-1":
        fail(f"definition {ET.tostring(definition)!r}")
    attributes = definition.find("attributes")
    if attributes is None:
        fail("no <attributes>")
    out["definition_attributes"] = len(list(attributes))

    form = urllib.parse.urlencode(
        {
            "service_code": "theft-1",
            "lat": "7.0705",
            "long": "125.6105",
            "description": "Phone snatched",
            "email": "python.client@example.org",
            "first_name": "Py",
            "last_name": "Client",
        }
    ).encode()
    posted = xml(f"{base}/requests.xml", data=form, expect=201)
    if posted.tag != "service_requests":
        fail(f"POST root {posted.tag}")
    request = posted.find("request")
    new_id = text(request, "service_request_id")
    token = text(request, "token")
    out["posted_id"] = new_id

    resolved = xml(f"{base}/tokens/{urllib.parse.quote(token)}.xml")
    out["token_resolves_to"] = text(resolved.find("request"), "service_request_id")

    fetched = None
    for _ in range(100):
        status, _, body = call(f"{base}/requests/{new_id}.xml")
        if status == 200:
            fetched = ET.fromstring(body)
            break
        time.sleep(0.1)
    if fetched is None:
        fail("the posted request never became visible")
    req = fetched.find("request")
    out["fetched_status"] = text(req, "status")
    raw = ET.tostring(fetched).decode()
    for secret in ("python.client", "Phone snatched", "7.0705", "125.6105"):
        if secret in raw:
            fail(f"public answer leaks {secret}: {raw}")

    listed = xml(f"{base}/requests.xml?status=open&service_code=theft-1")
    if new_id not in [text(r, "service_request_id") for r in listed.findall("request")]:
        fail("the new request is not in the open theft-1 list")

    status, _, body = call(f"{base}/requests.xml", data=b"service_code=theft-1")
    errors = ET.fromstring(body)
    if status != 400 or errors.tag != "errors":
        fail(f"error answer {status}: {body!r}")
    out["error_code"] = text(errors.find("error"), "code")
    if not text(errors.find("error"), "description"):
        fail("empty error description")

    print(json.dumps(out))


if __name__ == "__main__":
    main()
