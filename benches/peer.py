#!/usr/bin/env python3
"""The script an operations engineer would write instead of callbook, for the
planning benchmark's playbook: PyYAML + Jinja2 + phonenumbers, the same
decisions and the same `calls` in its JSON report.

It exists to measure callbook against it side by side (see CONTRIBUTING.md,
"Performance"); it is not part of callbook and checks far less than callbook
does (no schema, no locations, no limits).

Usage: python3 benches/peer.py PLAYBOOK.yaml NOW > report.json
Needs: pip install pyyaml jinja2 phonenumbers
"""
import csv
import datetime
import json
import os
import sys
import zoneinfo

import jinja2
import phonenumbers
import yaml
from markupsafe import escape


def dial_string(text):
    number = phonenumbers.parse(text, "US")
    if not phonenumbers.is_valid_number(number):
        raise SystemExit(f"invalid number {text!r}")
    if number.country_code == 1:
        return f"1{number.national_number}"
    return f"011{number.country_code}{number.national_number}"


def main():
    path, now = sys.argv[1], sys.argv[2]
    now = datetime.datetime.fromisoformat(now.replace("Z", "+00:00"))
    with open(path) as f:
        book = yaml.safe_load(f)
    base = os.path.dirname(path)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    ssml_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=True)
    messages = {}
    for name, m in book["messages"].items():
        if "ssml" in m:
            messages[name] = ("TTS", ssml_env.from_string(m["ssml"]), True)
        else:
            messages[name] = ("TTS", env.from_string(m["tts"]), False)
    rules = [
        (r["name"], env.compile_expression(r["when"]) if "when" in r else None, r)
        for r in book["rules"]
    ]
    people = []
    for entry in book["recipients"]:
        with open(os.path.join(base, entry["from"]), newline="") as f:
            people.extend(csv.DictReader(f))
    calls, seen = [], {}
    for row in people:
        tz = zoneinfo.ZoneInfo(row["timezone"])
        local = now.astimezone(tz)
        recipient = {
            "name": row["name"],
            "phone": dial_string(row["phone"]),
            "tags": [t for t in row["tags"].split(";") if t],
            "vars": {k: v for k, v in row.items() if k not in ("name", "phone", "timezone", "tags")},
            "local_time": {"hour": local.hour, "minute": local.minute},
        }
        ctx = dict(book.get("vars", {}), recipient=recipient)
        entry = {"recipient": row["name"], "to": recipient["phone"], "rule": None,
                 "service_type": None, "service_id": None, "status": "skipped",
                 "call_id": None, "attempts": 0, "reason": "no rule matched", "error": None}
        for name, when, rule in rules:
            if "tags" in rule and not set(rule["tags"]) & set(recipient["tags"]):
                continue
            if when is not None and not when(**ctx):
                continue
            entry["rule"] = name
            if "skip" in rule:
                entry["reason"] = rule["skip"]
            else:
                kind, template, _ = messages[rule["play"]]
                entry.update(service_type=kind, service_id=template.render(**ctx).strip(),
                             status="planned", reason=None)
                if entry["to"] in seen:
                    entry.update(service_type=None, service_id=None, status="skipped",
                                 reason=f"duplicate of {seen[entry['to']]}")
                else:
                    seen[entry["to"]] = row["name"]
            break
        calls.append(entry)
    json.dump({"playbook": book["name"], "calls": calls}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
