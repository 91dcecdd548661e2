"""The compiler: the shipped files compile; broken copies fail with every problem and its place."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sigex.cli.policy import policy as policy_group
from sigex.policies.compiled import CompiledPolicy
from sigex.policies.compiler import check_policy, load_policy
from sigex.policies.errors import PolicyInvalid, PolicyProblem


def line_of(path: Path, text: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``text``."""
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{text!r} not in {path}")


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, old
    path.write_text(text.replace(old, new, 1))


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_the_shipped_policy_compiles(policy: CompiledPolicy) -> None:
    assert check_policy() == []
    assert policy.version == "2026.11.1"
    assert len(policy.content_hash) == 64
    assert {a.id for a in policy.agreements} == {
        "LAA-FREQUENT-MOVER",
        "LAA-INVESTIGATION-OUTCOME",
        "PAYROLL-MISMATCH-MUNICIPALITY",
        "PAYROLL-MISMATCH-NLA",
        "PAYROLL-MISMATCH-BD",
        "PAYROLL-BSN-FEEDBACK",
        "WAADI-BD-SUWI64",
        "WAADI-UWV-SUWI64",
        "WAADI-BD-WTTA",
        "WAADI-UWV-WTTA",
        "WAADI-JUSTIS-WTTA",
    }


def test_the_content_hash_follows_the_files(policy_copy: Path, policy: CompiledPolicy) -> None:
    assert load_policy(policy_copy).content_hash == policy.content_hash
    append(policy_copy / "purposes.yaml", "# a comment is a change too\n")
    assert load_policy(policy_copy).content_hash != policy.content_hash


def test_every_shipped_field_is_in_its_schema_and_allowed_by_its_purpose(
    policy: CompiledPolicy,
) -> None:
    for agreement in policy.agreements:
        spec = policy.catalogue.signal(agreement.signal)
        assert agreement.fields <= spec.field_set
        classes = spec.classifications_of(tuple(agreement.fields))
        assert classes <= policy.purposes[agreement.purpose].classifications


NEW_AGREEMENT = """
  - id: {id}
    version: 1
    sender: {sender}
    signal: {signal}
    recipient: {recipient}
    purpose: {purpose}
    legal_basis: {basis}
{extra}    fields: [{fields}]
    retention_days: {retention}
    valid_from: {start}
    valid_until: {end}
"""


def new_agreement(**overrides: str) -> str:
    values = {
        "id": "BROKEN-1",
        "sender": "NLA",
        "signal": "waadi.admission-violation",
        "recipient": "UWV",
        "purpose": "WTTA_REGISTER",
        "basis": "NL.WAADI.WTTA",
        "extra": "",
        "fields": "signal_id, uitlener_kvk",
        "start": "2027-01-01",
        "end": "2027-12-31",
        "retention": "30",
    }
    values.update(overrides)
    return "agreements:" + NEW_AGREEMENT.format(**values)


# (file to change, old text, new text, message fragment, text on the expected line)
EDITS = [
    (
        "agreements/payroll.yaml",
        "recipient: NLA",
        "recipient: NLB",
        "unknown party 'NLB' as recipient",
        "recipient: NLB",
    ),
    (
        "agreements/laa.yaml",
        "signal: laa.investigation-outcome",
        "signal: laa.investigation-outcomes",
        "unknown signal 'laa.investigation-outcomes'",
        "signal: laa.investigation-outcomes",
    ),
    (
        "agreements/laa.yaml",
        "period_end, profile]",
        "period_end, profile, hair_colour]",
        "field 'hair_colour' is not in signal 'laa.frequent-mover' version 1",
        "hair_colour",
    ),
    (
        "agreements/payroll.yaml",
        "purpose: SUWI64_FISC",
        "purpose: SUWI64_FISCAL",
        "unknown purpose 'SUWI64_FISCAL'",
        "purpose: SUWI64_FISCAL",
    ),
    (
        "agreements/waadi.yaml",
        "worker_count, observed_from, observed_to]",
        "worker_count, observed_from, observed_to, suspected_offence]",
        "field 'suspected_offence' is classified 'criminal', which purpose 'SUWI64_FISC' "
        "does not allow",
        "suspected_offence]",
    ),
    (
        "agreements/payroll.yaml",
        "recipient: BD\n    purpose: SUWI64_FISC",
        "recipient: NLA\n    purpose: SUWI64_ARB",
        "agreement 'PAYROLL-MISMATCH-BD' overlaps agreement 'PAYROLL-MISMATCH-NLA'",
        "- id: PAYROLL-MISMATCH-BD",
    ),
    (
        "agreements/payroll.yaml",
        "legal_basis: NL.WBRP.2.34",
        "legal_basis: NL.SUWI.62",
        "legal basis 'NL.SUWI.62' does not support purpose 'BRP_TERUGMELDING'",
        "legal_basis: NL.SUWI.62",
    ),
    (
        "agreements/payroll.yaml",
        "    cooperation: LSI\n",
        "",
        "legal basis 'NL.SUWI.64' requires a 'cooperation' and none is named",
        "- id: PAYROLL-MISMATCH-NLA",
    ),
    (
        "agreements/laa.yaml",
        "recipient: {party_in_field: municipality, kind: municipality}",
        "recipient: {party_in_field: gemeente, kind: municipality}",
        "recipient rule field 'gemeente' is not in the signal",
        "party_in_field: gemeente",
    ),
    (
        "agreements/laa.yaml",
        "valid_until: 2028-12-31",
        "valid_until: 2023-12-31",
        "'valid_until' is before 'valid_from'",
        "valid_until: 2023-12-31",
    ),
    (
        "purposes.yaml",
        "legal_bases: [NL.WBRP.LAA]",
        "legal_bases: [NL.WBRP.LAAA]",
        "unknown legal basis 'NL.WBRP.LAAA'",
        "NL.WBRP.LAAA",
    ),
    (
        "legal_bases.yaml",
        "status: experiment",
        "status: pilot",
        "'status' must be one of in_force, experiment, under_review, repealed",
        "status: pilot",
    ),
    (
        "legal_bases.yaml",
        "    requires_cooperation: true\n",
        "    requires_cooperation: true\n    requires_cooperatoin: true\n",
        "unknown key 'requires_cooperatoin'",
        "requires_cooperatoin",
    ),
    (
        "parties.yaml",
        'oin: "00000099000000021000"',
        'oin: "0000009900000002100"',
        "party 'NLA': field 'oin': not a valid OIN (must be exactly 20 digits)",
        'oin: "0000009900000002100"',
    ),
    (
        "parties.yaml",
        "code: SVB",
        "code: UWV  # a second UWV",
        "code 'UWV' is defined twice",
        "a second UWV",
    ),
    (
        "cooperations.yaml",
        "partners: [NLA, UWV, BD, SVB]\n    valid_from: 2024-01-01\n    valid_until: 2026-12-31",
        "partners: [NLA, UWV, SVB]\n    valid_from: 2024-01-01\n    valid_until: 2026-12-31",
        "party 'BD' is not a partner of 'AMU'",
        "agreements/waadi.yaml::cooperation: AMU",
    ),
    (
        "agreements/waadi.yaml",
        "valid_from: 2027-01-01",
        "valid_from: 2027-01-01\n    valid_from: 2026-01-01",
        "key 'valid_from' appears twice",
        "valid_from: 2026-01-01",
    ),
    (
        "agreements/laa.yaml",
        "retention_days: 730",
        "retention_days: forever",
        "'retention_days' must be a positive whole number",
        "retention_days: forever",
    ),
    (
        "policy.yaml",
        "timezone: Europe/Amsterdam",
        "timezone: Europe/Amsterdamm",
        "unknown time zone 'Europe/Amsterdamm'",
        "timezone:",
    ),
    (
        "agreements/laa.yaml",
        "sender: {kind: municipality, party_in_field: municipality}",
        "sender: {kind: municipality, party_in_field: gemeente}",
        "sender rule field 'gemeente' is not in the signal",
        "party_in_field: gemeente",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "message", "marker"), EDITS)
def test_a_broken_copy_is_refused_with_file_and_line(
    policy_copy: Path, file: str, old: str, new: str, message: str, marker: str
) -> None:
    replace_once(policy_copy / file, old, new)
    problems = check_policy(policy_copy)
    problem_file, _, marker_text = marker.rpartition("::")
    problem_file = problem_file or file
    expected_line = line_of(policy_copy / problem_file, marker_text)
    matching = [p for p in problems if message in p.message]
    assert matching, problems
    assert any(p.file == problem_file and p.line == expected_line for p in matching), matching
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(policy_copy)
    assert caught.value.problems == tuple(problems)


# (the new agreement's overrides, message fragment, text on the expected line)
NEW_AGREEMENTS = [
    ({"sender": "ACME"}, "unknown party 'ACME' as sender", "sender: ACME"),
    ({"recipient": "NLA"}, "sender and recipient are the same party", "recipient: NLA"),
    ({"purpose": "WTTA_ROUTE"}, "unknown purpose 'WTTA_ROUTE'", "purpose: WTTA_ROUTE"),
    ({"basis": "NL.WAADI"}, "unknown legal basis 'NL.WAADI'", "legal_basis: NL.WAADI"),
    (
        {"fields": "signal_id, worker_bsns"},
        "field 'worker_bsns' is classified 'identifier.bsn', which purpose 'WTTA_REGISTER' "
        "does not allow",
        "fields:",
    ),
    (
        {
            "purpose": "SUWI64_ARB",
            "basis": "NL.SUWI.64",
            "recipient": "JUSTIS",
            "extra": "    cooperation: AMU\n",
            "start": "2025-01-01",
            "end": "2025-12-31",
        },
        "party 'JUSTIS' is not a partner of 'AMU'",
        "cooperation: AMU",
    ),
    (
        {"extra": "    cooperation: AMU\n"},
        "cooperation 'AMU' rests on 'NL.SUWI.64', not 'NL.WAADI.WTTA'",
        "cooperation: AMU",
    ),
    (
        {
            "recipient": "BD",
            "purpose": "WTTA_TOEZICHT",
            "fields": "signal_id, detected_at, kind, uitlener_kvk, uitlener_loonheffingennummer, "
            "inlener_kvk, inlener_loonheffingennummer, worker_count, observed_from, observed_to",
            "retention": "1825",
        },
        "agreement 'BROKEN-1' overlaps agreement 'WAADI-BD-WTTA'",
        "- id: BROKEN-1",
    ),
    (
        {"recipient": "BD", "purpose": "WTTA_TOEZICHT"},
        "agreement 'BROKEN-1' contradicts agreement 'WAADI-BD-WTTA'",
        "- id: BROKEN-1",
    ),
    (
        {"id": "WAADI-BD-WTTA", "recipient": "SVB"},
        "agreement 'WAADI-BD-WTTA' version 1 is also defined at agreements/waadi.yaml",
        "- id: WAADI-BD-WTTA",
    ),
    (
        {"sender": "{kind: planet}"},
        "no party is of kind 'planet'",
        "sender: {kind: planet}",
    ),
]


@pytest.mark.parametrize(("overrides", "message", "marker"), NEW_AGREEMENTS)
def test_a_broken_new_agreement_is_refused_with_file_and_line(
    policy_copy: Path, overrides: dict[str, str], message: str, marker: str
) -> None:
    path = policy_copy / "agreements" / "zz-broken.yaml"
    path.write_text(new_agreement(**overrides))
    problems = check_policy(policy_copy)
    matching = [p for p in problems if message in p.message]
    assert matching, problems
    assert matching[0] == PolicyProblem(
        "agreements/zz-broken.yaml", line_of(path, marker), matching[0].message
    )


def test_the_new_agreement_template_itself_compiles(policy_copy: Path) -> None:
    (policy_copy / "agreements" / "zz-new.yaml").write_text(new_agreement())
    compiled = load_policy(policy_copy)
    assert compiled.agreement("BROKEN-1").fields == frozenset({"signal_id", "uitlener_kvk"})


def test_a_basis_must_permit_criminal_data(policy_copy: Path) -> None:
    purposes = policy_copy / "purposes.yaml"
    purposes.write_text(
        purposes.read_text().replace(
            "classifications: [public, organisation, identifier.bsn, personal, address]",
            "classifications: [public, organisation, identifier.bsn, personal, address, criminal]",
        )
    )
    path = policy_copy / "agreements" / "waadi.yaml"
    replace_once(
        path,
        "worker_count, observed_from, observed_to]",
        "worker_count, observed_from, observed_to, suspected_offence]",
    )
    problems = check_policy(policy_copy)
    assert [str(p) for p in problems] == [
        f"agreements/waadi.yaml:{line_of(path, 'suspected_offence]')}: agreement "
        "'WAADI-BD-SUWI64': field 'suspected_offence' is classified 'criminal', which "
        "legal basis 'NL.SUWI.64' does not permit"
    ]


def test_a_yaml_syntax_error_names_its_line(policy_copy: Path) -> None:
    path = policy_copy / "purposes.yaml"
    replace_once(path, "  - code: LAA_SIGNAAL", "  - code: [LAA_SIGNAAL")
    problems = [p for p in check_policy(policy_copy) if p.file == "purposes.yaml"]
    assert len(problems) == 1
    assert problems[0].message.startswith("not valid YAML")
    assert problems[0].line >= line_of(path, "[LAA_SIGNAAL")


def test_an_unknown_classification_in_a_schema_is_reported(policy_copy: Path) -> None:
    path = policy_copy / "classifications.yaml"
    replace_once(path, "  - code: address\n", "  - code: adres\n")
    problems = check_policy(policy_copy)
    schema_problems = [p for p in problems if p.file.startswith("schemas/")]
    assert any(
        "'postcode' has unknown classification 'address'" in p.message for p in schema_problems
    )
    assert any(
        p.file == "purposes.yaml" and "unknown classification 'address'" in p.message
        for p in problems
    )


def test_every_problem_is_reported_at_once(policy_copy: Path) -> None:
    edits = EDITS[:5] + EDITS[6:10]  # edits that do not touch the same text
    for file, old, new, _message, _marker in edits:
        replace_once(policy_copy / file, old, new)
    problems = check_policy(policy_copy)
    assert len(problems) >= len(edits)
    for _file, _old, _new, message, _marker in edits:
        assert any(message in p.message for p in problems), message
    assert problems == sorted(problems, key=lambda p: (p.file, p.line, p.message))


def test_sigex_policy_check_passes_on_the_shipped_files() -> None:
    result = CliRunner().invoke(policy_group, ["check"])
    assert result.exit_code == 0, result.output
    assert "OK, 11 agreements" in result.output


def test_sigex_policy_check_lists_each_problem_with_its_place(policy_copy: Path) -> None:
    for file, old, new, _message, _marker in EDITS[:3]:
        replace_once(policy_copy / file, old, new)
    result = CliRunner().invoke(policy_group, ["check", "--directory", str(policy_copy)])
    assert result.exit_code == 1
    for file, _old, _new, message, marker in EDITS[:3]:
        expected = f"{file}:{line_of(policy_copy / file, marker)}: "
        assert any(
            line.startswith(expected) and message in line for line in result.output.splitlines()
        ), (expected, result.output)
