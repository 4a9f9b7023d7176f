"""YAML a user writes (template and brand-profile editor, `workbench prompts check`, training configs) is read
bounded: alias bombs, deep nesting and oversized text are refused quickly with a message naming the line."""
import time

import pytest
from typer.testing import CliRunner

from hostile.text import YAML_BOMBS
from workbench.prompts import PromptError, parse_brand, parse_template
from workbench.prompts.cli import app
from workbench.train.config import ConfigError, load_config

ALIAS_BOMBS = ["aliases-depth-7", "aliases-depth-9"]


@pytest.mark.parametrize("bomb", ALIAS_BOMBS)
@pytest.mark.parametrize("parse", [parse_template, parse_brand])
def test_alias_bombs_are_refused_in_under_a_second_by_the_validate_call(parse, bomb):
    start = time.thread_time()
    with pytest.raises(PromptError) as err:
        parse(YAML_BOMBS[bomb], "editor", default_name="x")  # what the Prompts page's Validate button calls
    assert time.thread_time() - start < 1
    (problem,) = err.value.problems
    assert problem.line == 1 and "anchors and aliases (&name / *name) are not allowed in templates" in problem.message


def test_a_single_anchor_is_refused_with_its_line():
    with pytest.raises(PromptError) as err:
        parse_template(YAML_BOMBS["one-alias"], "polo.yaml")
    assert str(err.value).startswith("polo.yaml:2: YAML anchors and aliases")


@pytest.mark.parametrize("bomb", ["huge", "deep-nesting"])
def test_oversized_and_deeply_nested_yaml_is_refused(bomb):
    with pytest.raises(PromptError) as err:
        parse_template(YAML_BOMBS[bomb], "big.yaml")
    assert "limit is 262,144 bytes" in str(err.value) or "nested more than 64 levels" in str(err.value)


@pytest.mark.parametrize("bomb", ALIAS_BOMBS + ["huge"])
def test_prompts_check_refuses_bombs_quickly(tmp_path, bomb):
    path = tmp_path / f"{bomb}.yaml"
    path.write_text(YAML_BOMBS[bomb])
    start = time.thread_time()
    result = CliRunner().invoke(app, ["check", str(path)])
    assert time.thread_time() - start < 1
    assert result.exit_code == 1
    assert f"{path}" in result.output and ("not allowed" in result.output or "bytes" in result.output)


@pytest.mark.parametrize("bomb", ALIAS_BOMBS + ["huge"])
def test_training_configs_refuse_bombs(tmp_path, bomb):
    path = tmp_path / "run.yaml"
    path.write_text(YAML_BOMBS[bomb])
    start = time.thread_time()
    with pytest.raises(ConfigError, match="not allowed in training configs|262,144 bytes"):
        load_config(path)
    assert time.thread_time() - start < 1
