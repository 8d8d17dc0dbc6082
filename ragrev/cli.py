"""The ``ragrev`` command line: a thin click layer over :mod:`ragrev.commands`.

Every :class:`~ragrev.errors.RagrevError` becomes one line on standard error
(``ragrev: error: ...``, secrets masked) and its exit code: 1 a step or check
failed, 2 bad input, 3 lock not obtained, 4 ``check``/``review`` found
problems, 130 interrupted (Ctrl-C). Results go to standard output; progress
and logs to standard error. Every command that prints takes ``--format
text|json|github`` (:mod:`ragrev.output`; ``--json`` is ``--format json``).
"""
from __future__ import annotations

import logging
import os
import sys

import click

from ragrev import __version__
from ragrev.cli_examples import EXAMPLES


def _config(ctx):
    from ragrev.config import load_config

    obj = ctx.find_object(dict)
    if "config" not in obj:
        obj["config"] = load_config(obj.get("config_path"))
    return obj["config"]


def _echo_json(kind: str, body: dict) -> None:
    from ragrev.output import dumps

    click.echo(dumps(kind, body))


def _set_format(ctx, param, value):
    obj = ctx.ensure_object(dict)
    if param.name == "as_json":
        if value:
            obj["format"] = "json"
    elif value is not None and obj.get("format") != "json":
        obj["format"] = value
    return value


def json_option(fn):
    """``--format text|json|github`` and its alias ``--json``; the command reads
    the choice with :func:`_fmt`."""
    fn = click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_set_format,
                      help="Same as --format json.")(fn)
    return click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default=None,
                        expose_value=False, callback=_set_format, envvar="RAGREV_FORMAT",
                        help="Output: text (default), json (versioned documents), github "
                             "(text plus GitHub Actions annotations). Also $RAGREV_FORMAT.")(fn)


def _fmt(ctx) -> str:
    return ctx.find_object(dict).get("format") or "text"

store_option = click.option("--store", "stores", multiple=True, metavar="NAME",
                            help="Limit to this store (repeatable).")


class _OneLine(click.ClickException):
    """A usage error (missing option, unknown command...) shown as one line, exit 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"ragrev: error: {self.message}", err=True)


def _one_line(e: click.UsageError, where: str = "ragrev") -> click.ClickException:
    if type(e).__name__ == "NoArgsIsHelpError":  # bare 'ragrev': click prints the help
        return e
    if e.ctx is not None and e.ctx.parent is not None:
        where = e.ctx.command_path
    return _OneLine(f"{e.format_message().rstrip('.')} (see '{where} --help')")


class _WithExamples:
    """A command whose ``--help`` ends with its ``EXAMPLES``, laid out as written."""

    def format_epilog(self, ctx, formatter):
        super().format_epilog(ctx, formatter)
        lines = EXAMPLES.get("ragrev" if ctx.parent is None else self.name)
        if lines:
            with formatter.section("Examples"):
                for line in lines:
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


class ExamplesCommand(_WithExamples, click.Command):
    pass


class RagrevGroup(_WithExamples, click.Group):
    """Turns ragrev's errors, and click's usage errors, into one line and an exit code."""

    command_class = ExamplesCommand

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx):
        from ragrev.errors import RagrevError

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # outside a run (the runner raises Interrupted)
            click.echo("\nragrev: interrupted (Ctrl-C)", err=True)
            ctx.exit(130)
        except RagrevError as e:
            from ragrev.config import scrub

            message = scrub(str(e))
            click.echo(f"ragrev: error: {message}", err=True)
            if (ctx.obj or {}).get("format") == "github" and e.exit_code in (1, 130):
                from ragrev.output import annotation

                path, line = e.data.get("path"), e.data.get("line")
                prefix = f"{path}:{line}: " if line else f"{path}: "
                if path and message.startswith(prefix):
                    message = message[len(prefix):]
                click.echo(annotation("error", message, path, line, "ragrev"))
            ctx.exit(e.exit_code)
        except click.UsageError as e:
            raise _one_line(e, " ".join(filter(None, (ctx.command_path, ctx.invoked_subcommand)))) from None


@click.group(cls=RagrevGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", metavar="PATH", envvar="RAGREV_CONFIG",
              help="Configuration file (default ./ragrev.toml; also $RAGREV_CONFIG).")
@click.version_option(__version__, prog_name="ragrev")
@click.pass_context
def cli(ctx, config_path):
    """Versioned, reversible, resumable migrations for the stores of a RAG
    system: Milvus collections, MongoDB documents, chat archives, SQL tables."""
    ctx.ensure_object(dict)["config_path"] = config_path
    _log_to_stderr()


class _LogLine(logging.Handler):
    """The ``ragrev.*`` log records at ``$RAGREV_LOG`` level (default
    warning) as ``ragrev: LEVEL: message`` lines on standard error, except
    those the command prints anyway (its error line)."""

    def emit(self, record):
        if getattr(record, "ragrev_cli_shown", False) and record.levelno >= logging.WARNING:
            return
        try:
            from ragrev.config import scrub

            text = scrub(record.getMessage())
            if record.exc_info and self.level <= logging.DEBUG:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            click.echo(f"ragrev: {record.levelname.lower()}: {text}", err=True)
        except Exception:  # pragma: no cover - logging must not break a run
            self.handleError(record)


def _log_to_stderr() -> None:
    logger = logging.getLogger("ragrev")
    if any(isinstance(h, _LogLine) for h in logger.handlers):
        return
    name = os.environ.get("RAGREV_LOG", "warning").upper()
    level = logging.getLevelName(name) if isinstance(logging.getLevelName(name), int) else logging.WARNING
    logger.addHandler(_LogLine(level))
    logger.setLevel(level)
    logger.propagate = False


# --- project files ------------------------------------------------------------------

@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-t", "--template", default="generic", show_default=True, help="Project template.")
@json_option
@click.pass_context
def init(ctx, directory, template):
    """Write a new project (ragrev.toml, revisions/) into DIRECTORY."""
    from ragrev import commands

    written = commands.init(directory, template)
    if _fmt(ctx) == "json":
        return _echo_json("init", {"created": [str(p) for p in written]})
    for path in written:
        click.echo(f"  created {path}")
    click.echo(f"Edit {directory}/ragrev.toml, then: ragrev revision -m \"first revision\"")


@cli.command()
@click.option("-m", "--message", required=True, help="What the revision does.")
@click.option("-t", "--template", default=None, help="Revision template (generic, chat-archive, or the project's own).")
@click.option("--head", default=None, help="Parent revision (default: the single head; 'base' for a new base).")
@click.option("--branch-label", default=None, help="Label of a new branch.")
@click.option("--depends-on", multiple=True, help="Revision this one depends on without descending from it.")
@click.option("--rev-id", default=None, help="Revision id to use instead of a random one.")
@click.option("--autogenerate", is_flag=True,
              help="Fill upgrade() from the difference between the declared state ([ragrev] models) and head.")
@click.option("--against-live", is_flag=True, help="With --autogenerate: compare with the live stores, not head.")
@json_option
@click.pass_context
def revision(ctx, message, template, head, branch_label, depends_on, rev_id, autogenerate, against_live):
    """Write a new revision file."""
    from ragrev import commands

    if against_live and not autogenerate:
        from ragrev.errors import BadInput

        raise BadInput("--against-live goes with --autogenerate")
    if autogenerate:
        from ragrev import autogen

        path, diffs = autogen.write_revision(_config(ctx), message, head, branch_label, depends_on, rev_id,
                                             against_live)
        if _fmt(ctx) == "json":
            return _echo_json("revision", {"path": str(path), "detected": autogen.check_text(diffs).splitlines()})
        for line in autogen.check_text(diffs).splitlines():
            click.echo(f"  Detected {line}")
        click.echo(f"  Generating {path} ... done")
        return
    path = commands.revision(_config(ctx), message, template, head, branch_label, depends_on, rev_id)
    if _fmt(ctx) == "json":
        return _echo_json("revision", {"path": str(path)})
    click.echo(f"  Generating {path} ... done")


@cli.command()
@click.option("-m", "--message", required=True)
@click.option("--rev-id", default=None)
@click.argument("revisions", nargs=-1, required=True)
@json_option
@click.pass_context
def merge(ctx, message, rev_id, revisions):
    """Write a revision that merges REVISIONS ('heads' for all heads)."""
    from ragrev import commands

    path = commands.merge(_config(ctx), message, list(revisions), rev_id)
    if _fmt(ctx) == "json":
        return _echo_json("revision", {"path": str(path)})
    click.echo(f"  Generating {path} ... done")


# --- graph ------------------------------------------------------------------------------

@cli.command()
@click.option("-v", "--verbose", is_flag=True)
@json_option
@click.pass_context
def heads(ctx, verbose):
    """Show the head revisions."""
    from ragrev import commands

    graph, revs = commands.heads(_config(ctx))
    if _fmt(ctx) == "json":
        return _echo_json("heads", {"revisions": [commands.rev_json(graph, r) for r in revs]})
    for r in revs:
        click.echo(commands.fmt_verbose(graph, r) if verbose else commands.fmt_rev(graph, r, tree=False))


@cli.command()
@click.option("-v", "--verbose", is_flag=True)
@json_option
@click.pass_context
def branches(ctx, verbose):
    """Show branch points and where they lead."""
    from ragrev import commands

    graph, revs = commands.branches(_config(ctx))
    if _fmt(ctx) == "json":
        return _echo_json("branches", {"revisions": [commands.rev_json(graph, r) for r in revs]})
    for r in revs:  # as alembic branches: each block ends with an empty line
        click.echo(commands.fmt_verbose(graph, r) if verbose else commands.fmt_rev(graph, r))
        for child in graph.children(r.revision):
            click.echo(" " * len(r.revision) + " -> " + commands.fmt_rev(graph, graph.revisions[child], doc=verbose))
        click.echo("")


@cli.command()
@click.option("-r", "--rev-range", default=None, metavar="A:B", help="Range, e.g. base:head, 3f2a:, -3:.")
@click.option("-v", "--verbose", is_flag=True)
@click.option("-i", "--indicate-current", is_flag=True, help="Mark the revisions each store is at.")
@json_option
@click.pass_context
def history(ctx, rev_range, verbose, indicate_current):
    """List revisions, newest first."""
    from ragrev import commands

    config = _config(ctx)
    current = commands.applied_by_store(config) if indicate_current or (rev_range and "current" in rev_range) else {}
    graph, revs = commands.history(config, rev_range, current)
    at = {}
    for store, hs in current.items():
        for h in hs:
            at.setdefault(h, []).append(store)
    if _fmt(ctx) == "json":
        return _echo_json("history", {"revisions": [{**commands.rev_json(graph, r), "current_in": at.get(r.revision, [])}
                                                    for r in revs]})
    lines = []
    for r in revs:
        mark = ("current: " + ", ".join(at[r.revision])) if r.revision in at else ""
        if verbose:
            lines.append(commands.fmt_verbose(graph, r, mark))
        else:
            lines.append(commands.fmt_rev(graph, r, parents=True, doc=True, current=mark))
    if lines:  # one write: long histories print fast
        click.echo("\n".join(lines))


@cli.command()
@click.argument("rev")
@json_option
@click.pass_context
def show(ctx, rev):
    """Show one revision (id, prefix, label, head)."""
    from ragrev import commands

    graph, revs = commands.show(_config(ctx), rev)
    if _fmt(ctx) == "json":
        return _echo_json("show", {"revisions": [commands.rev_json(graph, r) for r in revs]})
    for r in revs:
        click.echo(commands.fmt_verbose(graph, r))


# --- stores ---------------------------------------------------------------------------------

def _migrate(ctx, direction, target, plan, stores, allow_edited, quiet):
    from ragrev import commands
    from ragrev.progress import ConsoleReporter

    fmt = _fmt(ctx)
    reporter = ConsoleReporter(quiet=quiet or plan, fmt=fmt)
    actions = commands.migrate(_config(ctx), direction, target, plan_only=plan, store_names=stores,
                               allow_edited=allow_edited, reporter=reporter)
    if plan and fmt == "github":
        from ragrev.output import plan_markdown, step_summary

        step_summary(plan_markdown(direction, target, actions))
    if fmt == "json":
        return _echo_json("upgrade" if direction == "up" else "downgrade",
                          {"direction": direction, "target": target, "planned": plan, "revisions": actions})
    if not actions:
        click.echo("Nothing to do: every store is at the target.")
        return
    if plan:
        click.echo(f"{'upgrade' if direction == 'up' else 'downgrade'} plan to {target} (nothing has been changed):")
        for a in actions:
            click.echo(f"{a['revision']}  {a['message']}  [{a['store']}, {a['mode']}]")
            for s in a["steps"]:
                rows = f"  (~{s['rows']:,} rows)" if s.get("rows") is not None else ""
                done = "  (done)" if s["done"] else ""
                click.echo(f"    {s['index']}. {s['description']}{rows}{done}")
                if s.get("embedding"):
                    click.echo(f"       {_embedding_cost(s['embedding'])}")
            if not a["steps"]:
                click.echo("    (no steps: stamp only)")
        return
    n = len({a["revision"] for a in actions})
    click.echo(f"{'Upgraded' if direction == 'up' else 'Downgraded'}: {n} revision(s) over "
               f"{len({a['store'] for a in actions})} store(s).")


def _embedding_cost(e: dict) -> str:
    time_ = (f", ~{e['seconds'] / 3600:,.1f} h" if e["seconds"] >= 3600 else f", ~{e['seconds']:,.0f} s") \
        if e.get("seconds") is not None else " (no rate configured: remote(texts_per_second=...) or " \
                                             "[ragrev] embed_texts_per_second)"
    cached = f" ({e['cached']:,} already in the cache)" if e.get("cached") else ""
    return f"embeds {e['to_embed']:,} of {e['texts']:,} texts{cached}, ~{e['tokens']:,} tokens{time_}"


migrate_options = [
    click.option("--plan", is_flag=True, help="Print the steps that would run, per revision and store; change nothing."),
    json_option,
    store_option,
    click.option("--allow-edited", is_flag=True, help="Run even if applied revisions were edited."),
    click.option("-q", "--quiet", is_flag=True, help="No progress output."),
]


def _with(options):
    def deco(fn):
        for o in reversed(options):
            fn = o(fn)
        return fn

    return deco


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("target", default="heads")
@_with(migrate_options)
@click.pass_context
def upgrade(ctx, target, plan, stores, allow_edited, quiet):
    """Move every store up to TARGET (default: heads)."""
    _migrate(ctx, "up", target, plan, stores, allow_edited, quiet)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("target")
@_with(migrate_options)
@click.pass_context
def downgrade(ctx, target, plan, stores, allow_edited, quiet):
    """Move every store down to TARGET (a revision, -N, or base)."""
    _migrate(ctx, "down", target, plan, stores, allow_edited, quiet)


@cli.command()
@click.option("-v", "--verbose", is_flag=True)
@store_option
@json_option
@click.pass_context
def current(ctx, verbose, stores):
    """One row per store: its version, and what is pending or half-applied."""
    from ragrev import commands

    rows = commands.current(_config(ctx), stores or None)
    if _fmt(ctx) == "json":
        return _echo_json("current", {"stores": rows})
    width = max((len(r["store"]) for r in rows), default=5)
    for r in rows:
        heads_ = ", ".join(r["heads"]) or "<base>"
        state = "(head)" if r["at_head"] else f"({len(r['pending'])} pending)" if r["pending"] else ""
        line = f"{r['store']:<{width}}  {heads_} {state}".rstrip()
        if verbose:
            line += f"   [{r['kind']}: {r['url']}]"
        click.echo(line)
        for note in r["notes"]:
            click.echo(f"{'':<{width}}  ! {note}")


@cli.command()
@click.argument("rev")
@store_option
@click.option("--purge", is_flag=True, help="Clear the version table and journal first.")
@json_option
@click.pass_context
def stamp(ctx, rev, stores, purge):
    """Set stores' versions to REV without running any step."""
    from ragrev import commands

    rows = commands.stamp(_config(ctx), rev, stores or None, purge)
    if _fmt(ctx) == "json":
        return _echo_json("stamp", {"stores": rows})
    for row in rows:
        click.echo(f"{row['store']}: {', '.join(row['from']) or '<base>'} -> {', '.join(row['to']) or '<base>'}")


@cli.command()
@store_option
@json_option
@click.pass_context
def repair(ctx, stores):
    """Accept edited applied revisions and forget failed runs of deleted ones (see docs/repair.md)."""
    from ragrev import commands

    changes = commands.repair(_config(ctx), stores or None)
    if _fmt(ctx) == "json":
        return _echo_json("repair", {"changes": changes})
    for c in changes:
        click.echo(f"{c['store']}: {c['detail']}")
    if not changes:
        click.echo("Nothing to repair: every store's journal matches the revision files.")


@cli.command()
@click.option("--older-than", default=None, metavar="DURATION", help="Only trash older than this (e.g. 30d).")
@store_option
@json_option
@click.pass_context
def purge(ctx, older_than, stores):
    """Delete soft-dropped collections and tables (the trash) for good."""
    from ragrev import commands
    from ragrev.config import parse_duration

    seconds = parse_duration(older_than, "--older-than") if older_than else None
    purged = commands.purge(_config(ctx), seconds, stores or None)
    if _fmt(ctx) == "json":
        return _echo_json("purge", {"purged": purged})
    for store, names in purged.items():
        for n in names:
            click.echo(f"{store}: purged {n}")
        if not names:
            click.echo(f"{store}: no trash")


# --- code review -----------------------------------------------------------------------------

def _problems(count: int, what: str):
    from ragrev.errors import ProblemsFound

    raise ProblemsFound(f"{what} found {count} problem(s)")


@cli.command()
@click.option("--stores", "with_stores", is_flag=True,
              help="Also compare applied revisions with their files in every store (connects to them).")
@store_option
@json_option
@click.pass_context
def check(ctx, with_stores, stores):
    """Check the revision graph, revisions/ragrev.sum and lint every revision (exit 4 on findings)."""
    from ragrev import review as rv

    report = rv.check(_config(ctx), with_stores, list(stores) or None)  # with the declared-state findings
    fmt = _fmt(ctx)
    if fmt == "json":
        _echo_json("check", report)
    else:
        click.echo(rv.check_text(report))
    if fmt == "github":
        from ragrev.output import finding_annotations

        for line in finding_annotations(report["findings"]):
            click.echo(line)
    if report["findings"]:
        _problems(len(report["findings"]), "check")


@cli.command()
@click.option("--base", default=None, metavar="REF",
              help="Git ref to review against (default: origin/HEAD, origin/main, main, origin/master or master).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "text", "json", "github"]), default=None,
              envvar="RAGREV_FORMAT",
              help="markdown (default; 'text' is the same), json, or github (the Markdown, annotations of the "
                   "findings, and the review appended to $GITHUB_STEP_SUMMARY). Also $RAGREV_FORMAT.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.pass_context
def review(ctx, base, fmt, as_json):
    """Review the revisions this branch adds, changes or deletes against REF (exit 4 on problems)."""
    from ragrev import review as rv

    fmt = "json" if as_json else (fmt or "markdown")
    ctx.find_object(dict)["format"] = fmt
    report = rv.review(_config(ctx), base)
    if fmt == "json":
        _echo_json("review", report)
    else:
        text = rv.to_markdown(report)
        click.echo(text, nl=False)
        if fmt == "github":
            from ragrev.output import finding_annotations, step_summary

            for line in finding_annotations(report["findings"]):
                click.echo(line)
            step_summary(text)
    if not report["ok"]:
        merge = report["after_merge"]
        _problems(len(report["findings"]) + bool(merge["multiple_heads"] or merge["error"]), "review")


@cli.command("hash")
@json_option
@click.pass_context
def hash_(ctx):
    """Rewrite revisions/ragrev.sum from the revision files."""
    from ragrev import review as rv

    path, count = rv.hash_revisions(_config(ctx))
    if _fmt(ctx) == "json":
        return _echo_json("hash", {"path": str(path), "revisions": count})
    click.echo(f"  Wrote {path} ({count} revision(s))")


@cli.command()
@click.option("-o", "--output", "output", default="report.html", show_default=True, metavar="PATH",
              help="Where to write the HTML report ('-' for standard output).")
@store_option
@json_option
@click.pass_context
def report(ctx, output, stores):
    """Write a self-contained HTML report: versions, run history, steps, gates, archives, a timeline."""
    from ragrev import report as rp

    data = rp.collect(_config(ctx), list(stores) or None)
    if _fmt(ctx) == "json":
        return _echo_json("report", data)
    text = rp.render(data)
    if output == "-":
        click.echo(text)
        return
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
    click.echo(f"  Wrote {output}")


from ragrev.cli_drift import register as _register_drift  # noqa: E402

_register_drift(cli, _config, _echo_json, json_option, store_option)


def main() -> None:
    cli(prog_name="ragrev")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
