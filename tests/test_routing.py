"""@mentions, the Guide's structured decision with repair, and the local classifier."""
from __future__ import annotations

import pytest

from copilot.assistants import AssistantSpec, default_assistants, load_assistants
from copilot.config import ConfigError, load_config
from copilot.routing import classify, parse_mentions, validate_decision

A = default_assistants()


def names(specs):
    return [a.name for a in specs]


@pytest.mark.parametrize("message, expected, text", [
    ("@Coding what does Runner.run take?", ["Coding"], "what does Runner.run take?"),
    ("@coding what does it take?", ["Coding"], "what does it take?"),
    ("@ Coding what does it take?", ["Coding"], "what does it take?"),  # the form the 2024 regex missed
    ("@code what does it take?", ["Coding"], "what does it take?"),
    ("@tut explain memory", ["Tutoring"], "explain memory"),
    ("@Tutoring and @Coding: how do retries work?", ["Tutoring", "Coding"], "how do retries work?"),
    ("@Coding @Tutoring retries?", ["Coding", "Tutoring"], "retries?"),
    ("explain this, @Tutoring", ["Tutoring"], "explain this,"),
])
def test_mentions(message, expected, text):
    m = parse_mentions(message, A)
    assert names(m.targets) == expected and m.unknown == [] and m.text == text


def test_unknown_and_ambiguous_mentions():
    m = parse_mentions("@Nobody where is the config loaded?", A)
    assert m.targets == [] and m.unknown == ["Nobody"]
    extra = [*A, AssistantSpec("Tuning", "Answers about tuning.")]
    assert parse_mentions("@tu hello", extra).ambiguous == ["tu"]  # Tutoring or Tuning


def test_decorators_and_emails_are_not_mentions():
    for message in ("How does @function_tool parse docstrings?", "mail me at dev@example.com",
                    "what does `@dataclass` do here", "meet @ noon"):
        m = parse_mentions(message, A)
        assert m.targets == [] and m.unknown == [] and m.text == message


@pytest.mark.parametrize("question, expected", [
    ("hello!", []),
    ("Who are you?", []),
    ("what can you do", []),
    ("你好", []),
    ("What is indexed?", []),
    ("which sources do you have?", []),
    ("How do I add long-term memory to an agent?", ["Tutoring"]),
    ("What is a handoff?", ["Tutoring"]),
    ("Can I stream events from a run?", ["Tutoring"]),
    ("如何给智能体添加长期记忆？", ["Tutoring"]),
    ("What arguments does build_gadget take?", ["Coding"]),
    ("Where is MemoryStore.save implemented?", ["Coding"]),
    ("signature of Runner.run()", ["Coding"]),
    ("Runner.run 的参数是什么？", ["Coding"]),
    ("what does the max_turns argument of Runner.run do", ["Coding"]),
    ("If I don't pass a model, which provider is used?", ["Coding"]),
    ("How can I expose only read_file and write_file from an MCP server?", ["Tutoring", "Coding"]),
])
def test_local_classifier(question, expected):
    assert names(classify(question, A)) == expected


def test_classifier_with_a_custom_set_picks_a_named_assistant():
    extra = [*A, AssistantSpec("API", "Answers about the HTTP API.", kinds=["doc"])]
    assert names(classify("What does the API return for a missing key?", extra)) == ["API"]


@pytest.mark.parametrize("raw, expected, how", [
    ('{"route": ["Coding"], "reply": ""}', ["Coding"], "model"),
    ('{"route": ["tutoring", "coding"]}', ["Tutoring", "Coding"], "model"),
    ("```json\n{'route': ['@Tutoring'],}\n```", ["Tutoring"], "repaired"),
    ('Sure! {"route": ["Coding"]} hope that helps', ["Coding"], "repaired"),
    ('{"route": "coding"}', ["Coding"], "repaired"),
    ("@Coding will take this.", ["Coding"], "repaired"),
    ('{"route": [], "reply": "Hi, I am the Guide."}', [], "model"),
])
def test_decision_validated_and_repaired(raw, expected, how):
    d = validate_decision(raw, A)
    assert d is not None and names(d.targets) == expected and d.how == how
    if not expected:
        assert d.reply == "Hi, I am the Guide."


@pytest.mark.parametrize("raw", ['{"route": ["Nobody"]}', '{"route": []}', "I am not sure.", "", '{"route": 3}',
                                 '{"route": ["Coding", "Nobody"]}'])
def test_untrustworthy_decisions_are_rejected(raw):
    assert validate_decision(raw, A) is None


def test_assistants_from_config(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text('[[assistants]]\nname = "API"\ndescription = "Answers from the API reference."\n'
                        'avatar = "🔌"\nkbs = ["api"]\nkinds = ["doc"]\ntop_k = 4\n'
                        '[[assistants]]\nname = "coding"\ntop_k = 9\n', encoding="utf-8")
    specs = load_assistants(load_config(cfg_file, env={}))
    assert names(specs) == ["Guide", "Tutoring", "Coding", "API"]
    api = specs[-1]
    assert (api.avatar, api.kbs, api.kinds, api.top_k) == ("🔌", ["api"], ["doc"], 4)
    assert specs[2].top_k == 9 and "never invent" in specs[2].system_prompt  # a default, changed
    assert names(parse_mentions("@api what is returned?", specs).targets) == ["API"]


@pytest.mark.parametrize("toml, message", [
    ('[[assistants]]\ndescription = "x"\n', "needs a name"),
    ('[[assistants]]\nname = "A B"\n', "may only hold"),
    ('[[assistants]]\nname = "X"\nkinds = ["video"]\n', "kinds"),
    ('[[assistants]]\nname = "X"\ncolour = "red"\n', "Unknown setting 'colour'"),
])
def test_bad_assistant_config_is_one_clear_sentence(tmp_path, toml, message):
    f = tmp_path / "c.toml"
    f.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_assistants(load_config(f, env={}))
