"""The ``state`` and ``drift`` commands (see :mod:`ragrev.state`, :mod:`ragrev.drift`).

Kept apart from :mod:`ragrev.cli` and added to its group by :func:`register`.
"""
from __future__ import annotations

import click


def register(cli, _config, _echo_json, json_option, store_option) -> None:
    @cli.command("state")
    @click.argument("rev", required=False, default=None)
    @store_option
    @json_option
    @click.pass_context
    def state_cmd(ctx, rev, stores):
        """Print the state REV (default: head) implies, per store; touches no store."""
        from ragrev import state as st

        states = st.implied_state(_config(ctx), rev, stores or None)
        if (ctx.find_object(dict) or {}).get("format") == "json":
            _echo_json("state", {"target": rev or "heads", "stores": [s.as_json() for s in states.values()]})
        else:
            click.echo(st.to_text(states), nl=False)

    @cli.command("drift")
    @store_option
    @click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
    @click.option("--markdown", "as_markdown", is_flag=True, help="Print Markdown (a table per store).")
    @click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "github"]), default=None,
                  envvar="RAGREV_FORMAT",
                  help="Output format (same as --json / --markdown); github: the text, each drift as a "
                       "GitHub annotation, and the Markdown appended to $GITHUB_STEP_SUMMARY.")
    @click.option("--count-tolerance", type=float, default=0.5, show_default=True, metavar="RATIO",
                  help="A count is drift when it differs from the last recorded one by more than this ratio.")
    @click.option("--record-counts", is_flag=True,
                  help="Record the counts read now in each store, as the baseline of later runs.")
    @click.pass_context
    def drift_cmd(ctx, stores, as_json, as_markdown, fmt, count_tolerance, record_counts):
        """Compare each live store with the state its version implies (exit 4 on drift)."""
        from ragrev import drift as dr
        from ragrev.errors import BadInput

        if count_tolerance < 0:
            raise BadInput("--count-tolerance must be a ratio >= 0")
        fmt = "json" if as_json else "markdown" if as_markdown else (fmt or "text")
        ctx.find_object(dict)["format"] = fmt
        reports = dr.drift(_config(ctx), stores or None, count_tolerance, record_counts)
        if fmt == "json":
            _echo_json("drift", dr.to_json(reports))
        elif fmt == "markdown":
            click.echo(dr.to_markdown(reports), nl=False)
        else:
            click.echo(dr.to_text(reports), nl=False)
        if fmt == "github":
            from ragrev.output import annotation, step_summary

            config = _config(ctx)
            for r in reports:
                for d in r.drift:
                    click.echo(annotation("error", f"store {r.store!r}: {d['object']}: {d['what']} "
                                          f"(expected {d['expected']}, found {d['actual']})",
                                          config.path.name, None, "ragrev drift"))
            step_summary(dr.to_markdown(reports))
        if dr.has_drift(reports):
            ctx.exit(4)
