"""What a question asks for: the docs (how to do something) or the source (what the code does).

Keyword and shape rules that work for any framework, read by search (which of two close hits
comes first) and by the Guide's local routing (which specialist answers). Two kinds of evidence:

- the question's *intent*: "how do I ...", "is there a way ..." ask for a recipe (docs);
  "what happens if ...", "if I don't pass X, which ... is used", "how does it decide ..." ask what
  the code does in a case (source), as do questions about defaults;
- its *vocabulary*: code words (signature, decorator, raises) and code-shaped tokens
  (`quoted`, snake_case, CamelCase, calls()) against tutorial words (guide, example, configure).

Intent counts double: developers name identifiers in how-to questions too. (Chinese 怎么 asks
both "how do I" and "how does it", so only its how-to forms count as intent.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CODE_WORDS = re.compile(
    r"\b(signature|arguments?|args|kwargs|parameters?|params|implemented|implementation|source( code)?|"
    r"function|method|class|subclass|attribute|returns?|return type|type hints?|def|decorator|raises?|exception|"
    r"traceback|stack trace|module|import|defined|definition|overrid(e|es|den)|instantiate|constructor|enum|"
    r"dataclass|field|property|async|await|coroutine|callback|hook|protocol|interface|variable|constant|"
    r"default values?|defaults? to|by default|internally|under the hood|code path)\b|"
    r"源码|源代码|参数|函数|实现|类|方法|返回|定义|调用",
    re.IGNORECASE)
DOC_WORDS = re.compile(
    r"\b(how (do|can|should) (i|we|you)|how to|what is|what are|what's|why|explain|tutorial|guide|example|"
    r"concepts?|overview|difference between|when (should|to)|best practices?|configure|configuration|set ?up|"
    r"install|get(ting)? started|quickstart|recommended|should i|can i|is it possible|walk me through|"
    r"introduction|documentation|docs)\b|怎么|如何|什么是|为什么|教程|介绍|概念|区别|配置|安装|能否|可以",
    re.IGNORECASE)
# Code-shaped tokens: `quoted`, dotted.names, snake_case, calls(), camelCase, CamelCase (two humps,
# so brand names like OpenAI or LiteLLM do not count).
CODEISH = re.compile(r"`[^`]+`|\b\w+\.\w+\b(?!\s*$)|\b\w+_\w+\b|\b\w+\(\)?|\b[a-z]+[A-Z]\w*\b|"
                     r"\b[A-Z][a-z]+[A-Z][a-z]+\w*\b")
# Asking for a recipe.
HOW_TO = re.compile(
    r"\b(how (do|can|should|would) (i|we|you|(my |our )?users?)|what (do|should) (i|we)|how to|is there a way|"
    r"is it possible|when should|should i|can i|best way|walk me through|what('s| is) the difference)\b|"
    r"如何|(应该|该)怎么|怎么(让|才能)",
    re.IGNORECASE)
# Something the asker leaves unset: the default it falls back to (BEHAVIOUR, ASKS_DEFAULT).
UNSET = (r"if (i|you|we) (don't|do not|didn't|never) (pass|set|give|specify|name|provide)|"
         r"without (passing|setting|giving|specifying|naming)|neither\b.{0,160}?\bnor|defaults?|by default")
# Asking what the code does in a given case: what happens, what it falls back to, how it decides, which of two
# things it does ("does it retry, or does it give up?"; not the asker's own choice: "should I ... or", "do I ... or").
# Each open-ended span is bounded, so the reading stays linear in the question's length.
BEHAVIOUR = re.compile(
    r"\b(what happens|which one (wins|runs|is used)|what exact(ly)?|"
    r"(does|do|will|would|is|are) (?!(i|we|you)\b)\w+\b[^?]{0,160}?,? or (does|do|is|are|will|would|does it|do they)\b|"
    r"if (i|you|it|we|the \w+) (don't|do not|didn't|doesn't|does not|never) \w+|"
    r"which \w+( \w+)? (is|are|does \w+) (used|use|requested|chosen|picked)|"
    r"how does (the \w+|it|\w+) (decide|work out|come up|pick|choose|build|resolve|keep|notice|handle|compute|"
    r"determine)|" + UNSET + r")\b|默认|会怎样|会发生什么|是怎么判断|哪个",
    re.IGNORECASE)
# Asking for a default: what is used when the asker does not pass or set something.
ASKS_DEFAULT = re.compile(r"\b(" + UNSET + r")\b", re.IGNORECASE)
# Asking which part of the code does something ("which lifecycle callback fires before the model is called",
# "which variable makes it pick..."): the code, as surely as a behaviour question is. Not read as BEHAVIOUR is, so a
# how-to question asking which settings it needs still asks for the recipe.
WHICH_PART = re.compile(
    r"\bwhich (\w+ )?(callbacks?|hooks?|methods?|functions?|class(es)?|variables?|env(ironment)? var(iable)?s?|"
    r"settings?|options?|fields?|parameters?|arguments?|attributes?|properties|property|decorators?|flags?|events?|"
    r"exceptions?|errors?)\b",
    re.IGNORECASE)

# Speaking of making an object ("when creating the realtime runner", "if I create the SQLite session with..."): its
# constructor is where that happens (Index.search lifts the constructor of a class the question names).
CREATES = re.compile(r"\b(creat(e|es|ed|ing)|construct(s|ed|ing|or)?|instantiat\w*|initiali[sz](e|es|ed|ing))\b",
                     re.IGNORECASE)

# Comparing two or more things: the page that weighs them answers, not one of their definitions.
COMPARE = re.compile(
    r"\b(difference between|differences? (of|from)|differ(s)? from|vs\.?|versus|compared? (to|with)|"
    r"when (should|do|would) (i|we|you) use \S+ (and|or|vs\.?) when|"
    r"(should|do|would|can) (i|we|you) (use|return|raise|pick|choose|call|prefer) [^?]*,? or\b|"
    r"which (one|of them|is better|should (i|we))|pros and cons)\b|区别|差别|不同|对比|比较|还是",
    re.IGNORECASE)
# Something fails or behaves unexpectedly: a troubleshooting answer, whichever page or code holds it.
WHY_FAILS = re.compile(
    r"\b(why (does|do|is|are|did|doesn't|isn't|won't|can't|am i|would)|what('s| is) going on|"
    r"what am i (doing|missing)|(doesn't|does not|isn't|is not|won't|didn't) work|not working|"
    r"(it |that )?(fails?|failing|throws|blows up|crash(es)?|hangs?)\b|"
    r"\b(error|traceback|exception) (says|saying|message)|nothing (is|ever|happens|gets))\b|"
    r"为什么|报错|出错|失败|不对|不生效|没反应|怎么回事",
    re.IGNORECASE)
HOW_TO_ZH_MORE = re.compile(r"有什么办法|有没有办法|怎么办|怎样才能|怎么做")


def read_intent(question: str) -> str | None:
    """What the question wants: "compare" (two or more things weighed), "how_to" (a recipe), "why" (something
    fails or surprises), or None (what a symbol is or does: its definition answers)."""
    if COMPARE.search(question):
        return "compare"
    if HOW_TO.search(question) or HOW_TO_ZH_MORE.search(question):
        return "how_to"
    if WHY_FAILS.search(question):
        return "why"
    return None


# -- questions about the code graph: who calls X, what X calls, what breaks if X changes ----------------------
@dataclass(frozen=True)
class GraphQuestion:
    """A question the code graph answers (indexes/graph.py): `direction` "callers" or "callees" of `symbol`,
    followed `depth` levels ("what breaks if I change X" follows the callers three levels up)."""
    direction: str
    symbol: str
    depth: int = 1


# A name starts where an identifier can (not inside one): a long run of letters is then read once, not once
# from each of its letters (a 20,000-character word took minutes).
SYM = r"`?(?<![A-Za-z0-9_.:#])(?P<sym>[A-Za-z_][\w]*(?:(?:\.|::|#)[A-Za-z_]\w*)*)(?:\(\))?`?"
CALLERS = [re.compile(p, re.IGNORECASE) for p in (
    rf"\b(?:who|what|which (?:functions?|methods?|code|classes|places|files|modules))\s+(?:else\s+)?"
    rf"(?:calls?|uses?|invokes?|depends? on|subclass(?:es)?|extends?|inherits? from)\s+{SYM}",
    rf"\bwhere\s+(?:is|are|does|do)\s+{SYM}\s+(?:get\s+|being\s+)?(?:called|used|invoked|referenced|"
    rf"instantiated|subclassed)\b",
    rf"\b(?:find|show|list|give me)?\s*(?:the\s+|all\s+)?(?:callers|call sites|usages|references|invocations|"
    rf"subclasses)\s+(?:of|to|for)\s+{SYM}",
    rf"\b{SYM}'s\s+callers\b",
    rf"谁(?:调用|使用)了?\s*{SYM}", rf"{SYM}\s*(?:被|在)(?:谁|哪些地方|哪里|哪儿)(?:调用|使用)",
    rf"(?:调用|使用)了?\s*{SYM}\s*的(?:地方|代码|函数|位置)",
)]
IMPACT = [re.compile(p, re.IGNORECASE) for p in (
    rf"\bwhat\s+(?:would\s+|will\s+|might\s+|could\s+)?(?:breaks?|is affected|be affected|gets? affected|"
    rf"depends on it)\s+if\s+(?:i|we|you|someone)\s+(?:change|modify|rename|remove|delete|edit|touch)\s+{SYM}",
    rf"\bimpact\s+of\s+(?:changing|modifying|renaming|removing)\s+{SYM}",
    rf"(?:修改|改动|删除|重命名)\s*{SYM}\s*(?:会|将)?(?:影响|破坏)",
)]
CALLEES = [re.compile(p, re.IGNORECASE) for p in (
    rf"\bwhat\s+(?:functions?\s+|methods?\s+|else\s+|code\s+)?(?:does|do)\s+{SYM}\s+(?:call|invoke)\b",
    rf"\bwhich\s+(?:functions?|methods?)\s+(?:does|do)\s+{SYM}\s+(?:call|invoke)\b",
    rf"\bwhat\s+(?:is|are|gets?)\s+(?:called|invoked)\s+(?:by|from|in|inside)\s+{SYM}",
    rf"\b(?:callees|calls made|functions called)\s+(?:of|by|in|from)\s+{SYM}",
    rf"{SYM}\s*(?:调用了|调用)(?:哪些|什么)",
)]
NOT_SYMBOLS = {"it", "this", "that", "these", "those", "them", "the", "a", "an", "my", "our", "your", "code",
               "function", "method", "class", "something", "anything", "everything", "what", "which", "me", "us"}


def graph_question(question: str) -> GraphQuestion | None:
    """The graph question `question` asks, if it asks one: its direction and the symbol it names."""
    for patterns, direction, depth in ((IMPACT, "callers", 3), (CALLEES, "callees", 1), (CALLERS, "callers", 1)):
        for p in patterns:
            m = p.search(question)
            if m and m.group("sym").lower() not in NOT_SYMBOLS:
                return GraphQuestion(direction, m.group("sym").replace("::", ".").replace("#", "."), depth)
    return None


def plain_word(token: str) -> bool:
    """`word(` from "function (", a sentence-ending "e.g" or a version number ("0.12", "v2.1") is not code."""
    t = token.strip("`")
    if re.fullmatch(r"[vV]?\d+(\.\d+)+", t):
        return True
    return t.endswith("(") and t[:-1].lower() in {"i", "a", "is", "it", "the", "or", "and", "e", "for", "like"}


def kind_scores(question: str) -> tuple[float, float]:
    """(code, doc) evidence in the question."""
    identifiers = [m for m in CODEISH.findall(question) if not plain_word(m)]
    code = len(CODE_WORDS.findall(question)) + 1.5 * len(identifiers) + 2 * len(BEHAVIOUR.findall(question))
    code += 3 if graph_question(question) else 0  # who calls X, what X calls: the source answers
    doc = len(DOC_WORDS.findall(question)) + 2 * len(HOW_TO.findall(question))
    return code, doc


def read_kind(question: str) -> str | None:
    """"code", "doc", or None when the question leans neither way."""
    code, doc = kind_scores(question)
    return "code" if code > doc else "doc" if doc > code else None


# -- questions about a release: what changed between versions, whether something is deprecated ----
VERSION = r"v?\d+(?:\.\d+)+(?:[-.]?(?:a|b|rc|dev|post|alpha|beta|pre)[.-]?\d*)?|v\d+"
RELEASE_WORDS = re.compile(
    r"\b(what('s| has| have| is| was)? (changed|new|different)|what changes|(api )?changes? (in|to|between|from|"
    r"since|of)|changelog|release notes|breaking changes?|diff(erence)?s? (between|from)|upgrad(e|ing) (from|to)|"
    r"(was|were) (added|removed|renamed)|(added|removed|renamed) (in|since|between))\b|有什么变化|改动|变更",
    re.IGNORECASE)
DEPRECATION_WORDS = re.compile(r"\b(deprecat(ed|ion|es)|obsolete)\b|弃用|废弃", re.IGNORECASE)
NAME = r"`[^`]+`|(?<![\w.\-/@])[A-Za-z_@][\w.\-/@]*(?:\(\))?"
NOT_NAMES = {"the", "a", "an", "this", "that", "it", "its", "version", "versions", "release", "releases", "library",
             "package", "api", "my", "our", "since", "between", "from", "latest", "last", "new", "old", "there",
             "anything", "something", "what", "which", "is", "are", "was", "has", "have", "been", "to", "in", "of",
             "and", "still", "now", "v"}
SUBJECT_AFTER = re.compile(rf"\b(?:in|of|for|to|about)\s+(?:the\s+)?(?P<name>{NAME})", re.IGNORECASE)
KIND_WORD = r"(?:\s+(?:method|function|class|module|parameter|argument|option|attribute|property|api))?"
DEPRECATED_SUBJECT = re.compile(rf"\b(?:is|are|was|were|has|have|will)\s+(?:the\s+)?(?P<name>{NAME}){KIND_WORD}"
                                r"\s+(?:still\s+|now\s+|been\s+|being\s+|going to be\s+)*(?:deprecated|obsolete)",
                                re.IGNORECASE)
NAME_BEFORE = re.compile(rf"(?P<name>{NAME}){KIND_WORD}\s+(?:is\s+|was\s+)?(?:deprecated|obsolete)\b", re.IGNORECASE)


@dataclass
class ReleaseQuestion:
    """A question about a release, as read from its words: which intent, what it names."""
    intent: str  # "release" (what changed, what is new) or "deprecation" (is X deprecated?)
    subject: str  # the library or symbol it names, "" when none
    since: str  # the older version it names ("since 0.23", "between 0.23 and 0.24"), "" when none
    until: str  # the newer version it names ("in 0.24", "and 0.24"), "" when none


def read_release_question(question: str) -> ReleaseQuestion | None:
    """The question's reading when it asks what changed between versions or whether something is
    deprecated; None for any other question."""
    deprecation = DEPRECATION_WORDS.search(question) is not None
    if not deprecation and RELEASE_WORDS.search(question) is None:
        return None
    since, until = _versions(question)
    return ReleaseQuestion("deprecation" if deprecation else "release", _subject(question, deprecation), since,
                           until)


def _versions(question: str) -> tuple[str, str]:
    found = [(m.group(0), question[max(0, m.start() - 12):m.start()].lower()) for m in
             re.finditer(rf"(?<![\w.]){VERSION}(?![\w.]*\w)", question)]
    if not found:
        return "", ""
    if len(found) >= 2:
        return found[0][0], found[1][0]
    version, before = found[0]
    if re.search(r"\b(since|from|after|over|compared to|against|vs\.?)\s*(version\s*)?$", before):
        return version, ""
    return "", version


def _subject(question: str, deprecation: bool) -> str:
    quoted = re.search(r"`([^`]+)`", question)
    if quoted:
        return quoted.group(1).removesuffix("()")
    patterns = (DEPRECATED_SUBJECT, NAME_BEFORE, SUBJECT_AFTER) if deprecation else (SUBJECT_AFTER,)
    for pattern in patterns:
        for m in pattern.finditer(question):
            name = m.group("name").strip("`").removesuffix("()").rstrip(".?!,")
            if name.lower() not in NOT_NAMES and not re.fullmatch(VERSION, name):
                return name
    return ""
