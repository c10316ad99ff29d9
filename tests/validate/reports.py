#!/usr/bin/env python3
"""Validates dscan's JUnit and SARIF reports with real consumers.

JUnit: xmlschema against tests/schemas/junit.xsd, then junitparser reads the
file and its counts must match dscan's summary. SARIF: Microsoft's SARIF
multitool `validate` (the SARIF 2.1.0 JSON schema plus its rule set); any
error fails. Usage: reports.py DSCAN_BINARY SARIF_MULTITOOL
"""
import json
import os
import subprocess
import sys
import tempfile

import junitparser
import xmlschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "saf", "hdf")
HOSTILE = "<script>alert('x')</script> \"q\", c; a|b\nline & amp ]]> --> ünï 🚀"


def dscan(binary, *args):
    p = subprocess.run([binary, *args], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"dscan {' '.join(args)} failed: {p.stderr}")
    return p.stdout


def inputs(tmp):
    files = [os.path.join(FIXTURES, f) for f in sorted(os.listdir(FIXTURES))]
    hostile = os.path.join(tmp, "hostile.json")
    controls = [{"id": f"c{i}{HOSTILE}", "title": HOSTILE, "impact": impact, "tags": {"nist": ["AC-6"]},
                 "source_location": {"ref": f"controls/{HOSTILE}.rb", "line": 1},
                 "results": [{"status": status, "code_desc": HOSTILE, "message": HOSTILE}]}
                for i, (status, impact) in enumerate([("failed", 0.7), ("passed", 0.5), ("skipped", 0.3), ("error", 0.9)])]
    with open(hostile, "w") as f:
        json.dump({"platform": {"name": "x", "release": "1"}, "profiles": [{"name": HOSTILE, "controls": controls}]}, f)
    return files + [hostile]


def main():
    binary, multitool = sys.argv[1], sys.argv[2]
    schema = xmlschema.XMLSchema(os.path.join(ROOT, "tests", "schemas", "junit.xsd"))
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in inputs(tmp):
            name = os.path.basename(path)
            # Status totals over every counted control (the summary's totals
            # leave out Passed/Failed controls of severity none, as SAF's do).
            totals = yaml.safe_load(dscan(binary, "generate", "threshold", "-i", path, "-e"))
            junit_path = os.path.join(tmp, name + ".xml")
            dscan(binary, "report", "-i", path, "-f", "junit", "-o", junit_path)
            schema.validate(junit_path)
            xml = junitparser.JUnitXml.fromfile(junit_path)
            suites = list(xml)
            assert len(suites) == 1, name
            suite = suites[0]
            total = {s: (totals[s]["total"].get("min", totals[s]["total"].get("max"))) for s in
                     ("passed", "failed", "skipped", "error", "no_impact")}
            want_tests = sum(total.values())
            got = (suite.tests, suite.failures, suite.errors, suite.skipped)
            want = (want_tests, total["failed"], total["error"], total["skipped"] + total["no_impact"])
            assert got == want, f"{name}: junitparser reads {got}, dscan's counts are {want}"
            cases = list(suite)
            assert len(cases) == want_tests, f"{name}: {len(cases)} testcases"
            failed = sum(1 for c in cases for r in c.result if isinstance(r, junitparser.Failure))
            assert failed == total["failed"], f"{name}: {failed} failures read"

            sarif_path = os.path.join(tmp, name + ".sarif")
            dscan(binary, "report", "-i", path, "-f", "sarif", "-o", sarif_path)
            out = os.path.join(tmp, name + ".validation.sarif")
            p = subprocess.run([multitool, "validate", sarif_path, "-o", out, "--log", "ForceOverwrite"], capture_output=True, text=True)
            with open(out) as f:
                findings = json.load(f)
            errors = [r for run in findings["runs"] for r in run.get("results", []) if r.get("level") == "error"]
            if p.returncode != 0 or errors:
                sys.exit(f"{name}: SARIF validation failed (exit {p.returncode}):\n{p.stdout}\n{json.dumps(errors, indent=1)[:3000]}")
            checked += 1
    print("JUnit (XSD + junitparser) and SARIF (multitool) validation of every fixture")
    print(f"reports: {checked} passed, 0 failed")


if __name__ == "__main__":
    main()
