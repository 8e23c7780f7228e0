"""The typer app, its global options, and what every command shares: the
registry it acts on, the error funnel, and the common arguments and options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from .. import terminal
from ..usage import OneLineUsage

if TYPE_CHECKING:
    from ..registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="catalog",
    help=(
        "Model Catalog: a model registry that needs no server.\n\n"
        "Register trained models, approve them, record deployments and rollbacks, "
        "resolve what to load, and query it all with SQL.\n\n"
        "Example: catalog register churn ./model.pkl --owner ana --metric auc=0.91"
    ),
    cls=OneLineUsage,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    lake: str | None = None
    actor: str | None = None
    config: str | None = None
    traceback: bool = False
    progress: Optional[terminal.ProgressBar] = None


STATE = _State()


@app.callback()
def _global(
    lake: Annotated[
        Optional[str],
        typer.Option(
            "--lake",
            envvar="CATALOG_LAKE",
            help="The metadata lake: a folder or s3://BUCKET/PREFIX. Example: --lake /srv/models/lake (default ./data/lake).",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        Optional[str],
        typer.Option(
            "--actor",
            envvar="CATALOG_ACTOR",
            help="Who is acting, recorded on every write. Example: --actor ana (default: the OS user).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Optional[str],
        typer.Option(
            "--config",
            envvar="CATALOG_CONFIG",
            help="The policy file (default ./catalog.toml, else catalog.toml in the lake). Example: --config ci/catalog.toml",
            show_default=False,
        ),
    ] = None,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full traceback of an unexpected error. Example: --traceback")
    ] = False,
) -> None:
    STATE.lake, STATE.actor, STATE.config, STATE.traceback = lake, actor, config, traceback




def open_registry() -> Registry:
    """The registry the global options (or their environment variables) name."""
    from ..registry import Registry

    return Registry(STATE.lake, actor=STATE.actor, config=STATE.config, progress=STATE.progress)


def through_funnel(func: F) -> F:
    """Map CatalogError to one stderr line and its exit code; hide other tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        STATE.progress = terminal.progress_on_stderr()
        try:
            code = terminal.funnel(lambda: func(*args, **kwargs), traceback=STATE.traceback,
                                   passthrough=(typer.Exit, typer.Abort), as_json=bool(kwargs.get("as_json")))
        finally:
            if STATE.progress is not None:
                STATE.progress.close()
        if code:
            raise typer.Exit(code)

    return wrapper  # type: ignore[return-value]


def pairs(items: Optional[list[str]], what: str) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options as a dict (``--metric auc=0.91``)."""
    from ..validate import pairs as parse_pairs

    return parse_pairs(items or [], what)


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON with stable keys, for scripts. Example: --json")]
AsOfOpt = Annotated[
    Optional[str],
    typer.Option(
        "--as-of",
        help="Answer as the registry would have at this UTC time. Example: --as-of 2026-11-20T14:00:00Z",
        show_default=False,
    ),
]
NoteOpt = Annotated[
    Optional[str],
    typer.Option("--note", "-m", help="Why, recorded on the event. Example: --note 'passed offline eval'", show_default=False),
]
ModelArg = Annotated[str, typer.Argument(metavar="MODEL", help="Model name. Example: churn", show_default=False)]
VersionArg = Annotated[int, typer.Argument(metavar="VERSION", help="Version number. Example: 3", show_default=False)]
TargetOpt = Annotated[
    str, typer.Option("--target", "-t", help="Deployment target. Example: --target prod-eu", show_default=False)
]

