"""The Prometheus alert rules (ops/prometheus/alerts.yml): valid, each firing on its failure
(promtool's unit tests in alerts_test.yml), and naming only metrics that DuoNiche exports.

promtool comes with Debian's `prometheus` package (`.ci/run` installs it); without it the promtool
checks are skipped, the metric-name check still runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from duoniche.metrics_collector import business_gauges

RULES = Path(__file__).resolve().parents[1] / "ops" / "prometheus"
PROMTOOL = shutil.which("promtool")
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}


def promtool(*args: str) -> str:
    result = subprocess.run(
        [str(PROMTOOL), *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def exported_names() -> set[str]:
    names = set()
    families = [*REGISTRY.collect(), *business_gauges.describe()]
    for family in families:
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def test_the_rules_name_only_metrics_we_export():
    rules = yaml.safe_load((RULES / "alerts.yml").read_text(encoding="utf-8"))
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    named = {
        name
        for expr in expressions
        for name in re.findall(r"\b(backend_[a-z_]+|http_[a-z_]+)\b", expr)
    }

    assert named
    assert named <= exported_names(), named - exported_names()
