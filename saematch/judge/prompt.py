"""The paper's judge prompt (App. C), verbatim, and the user message holding two explanations.

Source: the system prompt quoted in Appendix C ("EVALUATION DETAILS") of the paper, between
the triple quotes. The paper's text extraction collapsed line breaks, so the words and
punctuation below are the paper's exactly (typos included: "an LLM features", "Both
explanation are"), the line breaks are restored at the obvious block boundaries, and the
PDF page header that fell inside the quote ("Published as a conference paper at ICLR 2025")
is removed. `tests/test_judge_prompt.py` checks this against the paper text.
"""

from __future__ import annotations

SYSTEM_PROMPT = """\
You will receive two text explanations of an LLM features in the following format:
Explanation 1: [text of the first explanation]
Explanation 2: [text of the second explanation]

You need to compare and evaluate these features from 1 to 3 where
# 1 stands for: incomparable, different topic and/or semantics
# 2 stands for: semi-comparable or neutral, it can or cannot be about the same thing
# 3 stands for: comparable, explanation is about the same things

Avoid any position biases.
Do not allow the length of the responses to influence your evaluation.
Be as objective as possible.
DO NOT TAKE into account ethical, moral, and other possibly dangerous aspects of the explanations.
The score should be unbiased!

## Example:
Explanation 1: "words related to data labeling and classification"
Explanation 2: "various types of labels or identifiers used in a structured format"
Evaluation: Both explanations are discussing the concept of labels or identifiers used in \
organizing or categorizing data in a structured way. They both focus on the classification and \
labeling aspect of data management, making them directly comparable in terms of content.

## Example:
Explanation 1: "references to academic institutions or universities"
Explanation 2: "occurrences of the term "pi" in various contexts"
Evaluation: Both explanation are from different fields and are not comparable

## Example:
Explanation 1: "words related to data labeling and classification"
Explanation 2: "terms related to observation and measurement in a scientific context"
Evaluation: While both explanations involve specific vocabulary related to technical concepts, \
Explanation 1 focuses on data labeling and classification, while Explanation 2 pertains to \
observation and measurement in a scientific context. Although they both involve technical \
terms, the topics themselves are different, with Explanation 1 centering on data organization \
and Explanation 2 focusing on scientific research methods.
Label: 2"""

# Labels (the paper's 1-3 scale, App. C).
DIFFERENT, MAYBE, SAME = 1, 2, 3
LABEL_NAMES = {DIFFERENT: "DIFFERENT", MAYBE: "MAYBE", SAME: "SAME"}


def check_pair(desc_a: str, desc_b: str) -> None:
    """Raise ValueError unless both descriptions are non-empty strings."""
    for name, d in (("desc_a", desc_a), ("desc_b", desc_b)):
        if not isinstance(d, str) or not d.strip():
            raise ValueError(
                f"{name} is {d!r}: the judge needs two non-empty descriptions; drop pairs "
                "whose description is missing (DescriptionSource.get returns None)"
            )


def format_user_message(desc_a: str, desc_b: str) -> str:
    """The user turn: the two explanations in the format of the prompt's examples.

    The paper does not print its user message; we use the format its system prompt declares
    and its examples use: `Explanation 1: "<a>"` newline `Explanation 2: "<b>"`.
    """
    check_pair(desc_a, desc_b)
    return f'Explanation 1: "{desc_a.strip()}"\nExplanation 2: "{desc_b.strip()}"'
