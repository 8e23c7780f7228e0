"""Reading a GTO registry (a git repository's tags and ``artifacts.yaml``) into a :class:`Plan`.

GTO keeps its registry in annotated git tags (GTO's ``tag_re``, gto/constants.py):

* ``NAME@vX.Y.Z`` registers a version at the tagged commit (``NAME@vX.Y.Z!`` deregisters it);
* ``NAME#STAGE`` assigns the version at the tagged commit to a stage (``NAME#STAGE!`` unassigns it);
* ``NAME@deprecated`` deprecates the whole artifact;

each optionally followed by ``#N`` (GTO's counter), with the tagger and the tag's date as
who and when. The git tags are read here with ``git for-each-ref`` (no GTO library
needed); ``artifacts.yaml`` at each version's commit gives its annotations (type, path,
labels, description, custom). What lands where is the README's field-mapping table
("Coming from MLflow / GTO"); in short: a registration is a version (numbered 1, 2, 3...
in the order registered, the semantic version kept in its origin), an assignment is a
deployment to a target of the stage's name, an unassignment ends it, a deregistration
retires the version and a deprecation retires every version.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import validate as check
from ..errors import CatalogError, ImportSourceInvalid, ImportUnreadable, ImportUnsupported
from ..progress import Progress, ticker
from . import Plan, PlannedEvent, PlannedVersion

SYSTEM = "gto"

# GTO's own grammar (gto.constants), so that what GTO reads as its tag is read here alike.
_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_SEMVER = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_TAG = re.compile(
    rf"^(?P<artifact>(?P<dirname>[a-zA-Z0-9-_./]+=)?{_NAME})"
    rf"(((#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?))|@((?P<deprecated>deprecated)|(?P<created>created)))"
    rf"(#(?P<counter>[0-9]+))?$"
)
_FIELDS = ("refname:strip=2", "objecttype", "*objectname", "objectname", "taggername", "taggeremail", "taggerdate:iso-strict",
           "contents")
_END = "\x1e"  # between records (a tag message may hold anything else)


@dataclass(frozen=True)
class GitTag:
    name: str
    commit: str
    tagger: str
    email: str
    at: datetime
    message: str
    annotated: bool


def read(repo: str, progress: Progress | None = None) -> Plan:
    """Everything the GTO registry in the git repository at ``repo`` holds, as a plan."""
    root = _toplevel(repo)
    remote = _git(root, "config", "--get", "remote.origin.url", check=False).strip()
    source = _repo_url(remote) if remote else root
    plan = Plan(SYSTEM, source)
    tags = _tags(root)
    tick = ticker(progress, "import reading GTO tags", None)
    _Reader(root, source, plan, _repo_url(remote) if remote else "file://" + root).read(tags, tick)
    if tick is not None:
        tick.finish()
    return plan


def _git(root: str, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        detail = " ".join(done.stderr.split())[:300] or f"git {args[0]} failed"
        raise ImportUnreadable(detail, source=root)
    return done.stdout


def _toplevel(repo: str) -> str:
    check.text(repo, "repository", required=True, limit=4_096)
    path = os.path.abspath(os.path.expanduser(repo))
    if not os.path.isdir(path):
        raise ImportSourceInvalid("no such folder: give the path of a git repository", source=repo)
    try:
        done = subprocess.run(["git", "-C", path, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                              timeout=60)
    except FileNotFoundError:
        raise ImportSourceInvalid("git is not installed here", source=repo) from None
    if done.returncode != 0:
        raise ImportSourceInvalid("not a git repository (GTO keeps its registry in git tags)", source=repo)
    return done.stdout.strip()


def _repo_url(remote: str) -> str:
    """A remote as a URL without credentials (``git@host:org/repo.git`` as ``ssh://git@host/org/repo.git``)."""
    if "://" not in remote and ":" in remote and not os.path.exists(remote):
        user_host, _, path = remote.partition(":")
        remote = f"ssh://{user_host}/{path}"
    elif "://" not in remote:
        remote = "file://" + os.path.abspath(remote)
    return check.strip_credentials(remote)


def _tags(root: str) -> list[GitTag]:
    form = "%00".join(f"%({f})" for f in _FIELDS) + _END
    out = _git(root, "for-each-ref", "refs/tags", f"--format={form}")
    found = []
    for chunk in out.split(_END):
        chunk = chunk.lstrip("\n")
        if not chunk:
            continue
        name, kind, peeled, target, tagger, email, date, message = chunk.split("\x00", 7)
        annotated = kind == "tag"
        at = datetime.fromisoformat(date).astimezone(timezone.utc) if date else datetime.min.replace(tzinfo=timezone.utc)
        found.append(GitTag(name, peeled or target, tagger, email.strip("<>"), at, message.strip(), annotated))
    return found


class _Reader:
    def __init__(self, root: str, source: str, plan: Plan, repo_url: str) -> None:
        self.root, self.source, self.plan, self.repo_url = root, source, plan, repo_url
        self.versions: dict[tuple[str, str], str] = {}  # (artifact, semver) -> origin id
        self.at_commit: dict[tuple[str, str], str] = {}  # (artifact, commit) -> origin id of its first version
        self.names: dict[str, str] = {}  # GTO artifact -> catalog model
        self.annotations: dict[tuple[str, str], dict[str, Any]] = {}

    def read(self, tags: list[GitTag], tick: Any) -> None:
        matched = [(tag, match) for tag in tags if (match := _TAG.match(tag.name)) is not None]  # others are not GTO's
        for tag, match in sorted(matched, key=_order):
            if tick is not None:
                tick()
            if not tag.annotated:
                self.plan.not_brought.append(f"tag {tag.name}: a lightweight tag has no tagger nor date (GTO ignores it too)")
                continue
            artifact = match["artifact"].replace("=", ":")
            model = self._model(artifact, tag)
            if match["version"] and not match["cancel"]:
                self._register(model, artifact, match["version"], tag)
            elif match["version"]:
                vid = self.versions.get((artifact, match["version"]))
                if vid is None:
                    self.plan.not_brought.append(f"tag {tag.name}: deregisters a version that was never registered")
                    continue
                self._event(model, vid, "retire", tag, f"GTO deregistered {artifact} {match['version']}")
            elif match["stage"]:
                vid = self._version_at(model, artifact, tag)
                kind = "undeploy" if match["cancel"] else "deploy"
                what = "unassigned" if match["cancel"] else "assigned"
                self._event(model, vid, kind, tag, f"GTO {what} stage {match['stage']}", target=match["stage"])
            elif match["deprecated"]:
                self._event(model, None, "retire-all", tag, f"GTO deprecated {artifact}")
            else:
                self.plan.not_brought.append(f"tag {tag.name}: GTO's 'created' tag records nothing to import")

    def _model(self, artifact: str, tag: GitTag) -> str:
        model = self.names.get(artifact)
        if model is not None:
            return model
        model = artifact.replace("/", ".").replace(":", ".")
        try:
            check.name(model)
        except CatalogError as exc:
            raise ImportUnsupported(str(exc), what=f"GTO artifact {artifact!r}", source=self.source) from None
        clash = next((a for a, m in self.names.items() if m == model), None)
        if clash is not None:
            raise ImportUnsupported(f"both {clash!r} and {artifact!r} would be the model {model!r}",
                                    what=f"GTO artifact {artifact!r}", source=self.source)
        self.names[artifact] = model
        self.plan.models.append(model)
        return model

    def _register(self, model: str, artifact: str, semver: str, tag: GitTag, *, registered: bool = True) -> str:
        notes = self._annotations(artifact, tag.commit)
        path = notes.get("path")
        vid = tag.name if registered else f"{artifact}@{tag.commit}"
        record: dict[str, Any] = {
            "artifact_uri": self._artifact_uri(tag.commit, path),
            "created_at": tag.at,
            "created_by": tag.tagger or "unknown",
            "description": notes.get("description") or None,
            "tags": _tags_of(notes),
            "code_repo": self.repo_url,
            "code_version": tag.commit,
        }
        origin = self.plan.origin(
            vid, name=artifact, semver=semver if registered else None, tag=tag.name, commit=tag.commit,
            tagger_email=tag.email or None, message=tag.message or None, path=path,
        )
        label = f"GTO tag {tag.name}" if registered else f"GTO {artifact} at commit {tag.commit[:12]}"
        self.plan.versions.append(PlannedVersion(model, record, origin, label))
        if registered:
            self.versions[(artifact, semver)] = vid
        self.at_commit.setdefault((artifact, tag.commit), vid)
        return vid

    def _version_at(self, model: str, artifact: str, tag: GitTag) -> str:
        """The version a stage tag points at: the one registered at its commit, else (as GTO
        does) a version of its own for the commit, registered here when first assigned."""
        vid = self.at_commit.get((artifact, tag.commit))
        if vid is None:
            vid = self._register(model, artifact, "", tag, registered=False)
        return vid

    def _event(self, model: str, vid: str | None, kind: str, tag: GitTag, note: str, *, target: str | None = None) -> None:
        message = f"{note}: {tag.message}" if tag.message else note
        self.plan.events.append(PlannedEvent(
            model, vid, kind, tag.at, tag.tagger or "unknown",
            self.plan.origin(tag.name, tag=tag.name, commit=tag.commit, tagger_email=tag.email or None),
            f"GTO tag {tag.name}", target=target, note=message,
        ))

    def _annotations(self, artifact: str, commit: str) -> dict[str, Any]:
        """The artifact's entry in ``artifacts.yaml`` at ``commit`` (in its folder, for ``dir:name``)."""
        folder, _, name = artifact.rpartition(":")
        key = (folder, commit)
        if key not in self.annotations:
            path = f"{folder}/artifacts.yaml" if folder else "artifacts.yaml"
            text = _git(self.root, "show", f"{commit}:{path}", check=False)
            try:
                import yaml  # type: ignore[import-untyped]  # PyYAML: comes with MkDocs

                loaded = yaml.safe_load(text) if text else {}
            except Exception as exc:
                raise ImportUnsupported(f"{path} at {commit[:12]} is not YAML ({type(exc).__name__})",
                                        what="GTO annotations", source=self.source) from None
            self.annotations[key] = loaded if isinstance(loaded, dict) else {}
        entry = self.annotations[key].get(name)
        return entry if isinstance(entry, dict) else {}

    def _artifact_uri(self, commit: str, path: Any) -> str:
        """An address ``path`` already is (``s3://...``), else the path in the repository at the
        commit: ``git+<repo>@<commit>#<path>`` (the commit alone for a virtual artifact)."""
        if isinstance(path, str) and "://" in path:
            return path
        uri = f"git+{self.repo_url}@{commit}"
        return f"{uri}#{path}" if isinstance(path, str) and path else uri


def _order(item: tuple[GitTag, re.Match[str]]) -> tuple[datetime, int, int, str]:
    """GTO's order: by the tag's date; within one second (git dates tags to the second), a
    registration first (a stage needs its version), then GTO's counter (``#N``)."""
    tag, match = item
    counter = int(match["counter"]) if match["counter"] else 0
    return tag.at, 0 if match["version"] and not match["cancel"] else 1, counter, tag.name


def _tags_of(notes: dict[str, Any]) -> dict[str, str]:
    """GTO's annotations as tags: ``type``, ``labels`` (comma-separated) and ``custom`` (JSON)."""
    tags = {}
    if notes.get("type"):
        tags["type"] = str(notes["type"])
    if notes.get("labels"):
        tags["labels"] = ",".join(str(label) for label in notes["labels"])
    if notes.get("custom") is not None:
        tags["custom"] = json.dumps(notes["custom"], sort_keys=True, default=str)
    return tags
