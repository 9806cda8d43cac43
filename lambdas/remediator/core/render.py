"""Plans and outcomes as people read them: the e-mail body and the CLI's table."""

from __future__ import annotations

from typing import Any

from remediator.core.plan import Plan, PlannedStep
from remediator.core.policy import Mode
from remediator.core.registry import REGISTRY

SUBJECT_LIMIT = 99  # SNS: under 100 characters, no line breaks


def _clip(text: str, room: int) -> str:
    """`text` in at most `room` characters, cut at a word and marked with an ellipsis when shortened."""
    if len(text) <= room:
        return text
    cut = text[: max(room - 1, 0)]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"


def subject(plan: Plan, outcome: str) -> str:
    """One line under SNS's 100 characters: the whole step summary, with the symptom's title when it fits;
    a summary too long for both is cut at a word, and the title kept."""
    first = plan.steps[0] if plan.steps else None
    what = " ".join((first.summary if first else plan.diagnosis.cause).split())
    head = " ".join(f"[{outcome.upper()}] {plan.stream}:".split())
    tail = f"({REGISTRY.symptoms[plan.symptom].title})"
    for text in (f"{head} {what} {tail}", f"{head} {what}"):
        if len(text) <= SUBJECT_LIMIT:
            return text
    room = SUBJECT_LIMIT - len(head) - len(tail) - 2
    if room < 12:  # a very long stream name or outcome: keep the start, clip the whole line
        return _clip(f"{head} {what} {tail}", SUBJECT_LIMIT)
    return f"{head} {_clip(what, room)} {tail}"


def _readable(value: Any) -> str:
    """A value from an action's answer as people read it: `current shards 2, target shards 4`, not a dict."""
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {_readable(v)}" for k, v in value.items() if _shown(v))
    if isinstance(value, list | tuple):
        return ", ".join(_readable(v) for v in value if _shown(v))
    return str(value)


def _shown(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def applied_detail(step: PlannedStep, response: dict[str, Any]) -> str:
    """What an applied step did, for the e-mail, the audit row and `history`: the changes before -> after, then
    what AWS answered, in words (`accepted by AWS: open shards 2 -> 4 (AWS's answer: current shards 2, ...)`)."""
    text = "accepted by AWS"
    changes = "; ".join(change.render() for change in step.changes)
    if changes:
        text += f": {changes}"
    answer = _readable(response)
    if answer:
        text += f" (AWS's answer: {answer})"
    return text


def command_line(step: PlannedStep) -> str:
    """The step's AWS CLI command, or why there is none: a step that changes nothing is not a command to run."""
    if step.changes_nothing:
        same = "; ".join(f"{c.setting} stays {c.after}" for c in step.changes)
        return f"none: this step changes nothing ({same})"
    return step.cli_command


def kill_switch_line(plan: Plan, step: PlannedStep, read: str | None, carried_out: bool) -> str:
    """The kill switch's verdict among the step's guardrails, whatever its state. `read` is what the service read
    right before carrying the step out ("off", "engaged", or why it could not be read); None when it was not read:
    a dry run, a step the guardrails above stopped, a plan only shown (`carried_out` False: the CLI's `plan`)."""
    if read is not None:
        return f"       [{'pass' if read == 'off' else 'STOP'}] kill-switch: {read} (read right before the change)"
    if plan.mode == Mode.DRY_RUN:
        why = "not read: a dry run changes nothing"
    elif not step.allowed:
        why = "not read: the step is blocked by the guardrails above"
    elif not carried_out:
        why = "not read by plan; the service reads it right before each change"
    else:
        why = "not read"
    return f"       [ -- ] kill-switch: {why}"


def figures_table(plan: Plan) -> list[str]:
    width = max((len(f.name) for f in plan.diagnosis.figures), default=0)
    return [f"  {f.name.ljust(width)}  {f.render()}" for f in plan.diagnosis.figures]


def body(
    plan: Plan, outcome: str, results: list[str] | None = None, kill_switch: list[str | None] | None = None
) -> str:
    """The e-mail: what happened (or would have), then the plan itself. `kill_switch`, when given, has what the
    service read from the kill switch before each step (None for a step it did not read it for)."""
    if plan.mode == Mode.DRY_RUN:
        preamble = "Kinesis Remediator, DRY RUN: nothing was changed. This is what enforce mode would do."
    else:
        preamble = f"Kinesis Remediator, ENFORCE: {outcome}."
    text = f"{preamble}\n\n{plan_text(plan, results, kill_switch)}"
    if plan.mode == Mode.DRY_RUN:
        text += (
            "\nTo let the remediator act on this stream, set `mode: enforce` for it in its policy file and redeploy."
        )
    return text


def plan_text(plan: Plan, results: list[str] | None = None, kill_switch: list[str | None] | None = None) -> str:
    """The plan as people read it: alarm, diagnosis, evidence table, steps with guardrails, advice. `results` and
    `kill_switch`, when given, have one entry per step, in the plan's order."""
    symptom = REGISTRY.symptoms[plan.symptom]
    lines = [
        f"Alarm:     {plan.alarm_name}",
        f"Stream:    {plan.stream} (mode: {plan.mode})",
        f"Symptom:   {symptom.title} ({plan.symptom})",
        f"           {symptom.meaning}",
        f"Time:      {plan.created_at:%Y-%m-%d %H:%M:%S} UTC",
        "",
        "Diagnosis",
        f"  {plan.diagnosis.summary}",
        "",
        f"Evidence (CloudWatch, last {symptom.evidence_window_minutes} minutes)",
        *figures_table(plan),
        "",
    ]
    if plan.steps:
        lines.append("Plan")
        for number, step in enumerate(plan.steps, start=1):
            state = "allowed" if step.allowed else "BLOCKED"
            lines += [
                f"  {number}. {step.summary} [{state}]",
                f"     Why:     {step.reason}",
                *([f"     Changes: {'; '.join(c.render() for c in step.changes)}"] if step.changes else []),
                *(
                    [f"     Cost:    {'' if step.allowed else 'if it were applied, '}{step.cost.render()}"]
                    if step.cost
                    else []
                ),
                f"     Command: {command_line(step)}",
                "     Guardrails:",
            ]
            lines += [f"       [{'pass' if g.passed else 'STOP'}] {g.name}: {g.detail}" for g in step.guardrails]
            read = kill_switch[number - 1] if kill_switch and number <= len(kill_switch) else None
            lines.append(kill_switch_line(plan, step, read, carried_out=results is not None))
            if results and number <= len(results):
                lines.append(f"     Result:  {results[number - 1]}")
        lines.append("")
    else:
        lines += ["Plan", "  No automatic action: see the diagnosis and the advice.", ""]
    lines += cost_lines(plan)
    if plan.diagnosis.advice:
        lines.append("Advice")
        for advice in plan.diagnosis.advice:
            lines.append(f"  - {advice.title}: {advice.detail}")
            if advice.cli_command:
                lines.append(f"      {advice.cli_command}")
        lines.append("")
    return "\n".join(lines)


def cost_lines(plan: Plan) -> list[str]:
    """The plan's monthly cost in one line, and where the figure comes from."""
    cost = plan.cost
    if cost is None:
        return []
    if plan.actions:
        what = f"{cost.render()} once the allowed steps are done"
    else:
        what = f"monthly cost ${cost.monthly_before_usd:,.2f} (no allowed step changes it)"
    status = "" if cost.prices_confirmed else ", UNCONFIRMED"
    return [
        "Cost (estimate)",
        f"  {what}",
        f"  {cost.region} list prices of {cost.prices_as_of}{status}; Kinesis only, at the average write rate",
        "",
    ]


def cost_table(plan: Plan) -> str:
    """The plan's monthly cost item by item, before -> after its allowed steps (for the CLI)."""
    cost = plan.cost
    if cost is None:
        return ""
    rows = [
        [
            line.item,
            f"{line.quantity_before:,.2f} -> {line.quantity_after:,.2f} {line.unit}",
            f"${line.unit_price_usd:g}",
            f"${line.before_usd:,.2f}",
            f"${line.after_usd:,.2f}",
        ]
        for line in cost.lines
    ]
    rows.append(["total", "", "", f"${cost.monthly_before_usd:,.2f}", f"${cost.monthly_after_usd:,.2f}"])
    text = table(["item", "quantity a month", "unit price", "before", "after"], rows)
    return "\n".join([text, *(f"  - {note}" for note in cost.notes)])


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns, for terminals and e-mail alike."""
    cells = [headers, *rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(text.rstrip() for text in out)


def located(subject_line: str, body_text: str, account: str, region: str) -> tuple[str, str]:
    """A member stream's e-mail (issue 11.4): the subject starts with its account and region (so a cut never loses
    them), and the body's first lines name them."""
    return (
        _clip(f"[{account} {region}] {subject_line}", SUBJECT_LIMIT),
        f"Account:   {account}\nRegion:    {region}\n{body_text}",
    )
