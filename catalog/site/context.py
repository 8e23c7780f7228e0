"""Records → one versioned data document that every page renders from (pure, no I/O).

The site generator reads the lake once (a handful of bulk queries over the stable
views, see :mod:`catalog.site.build`), hands the records to :func:`make_document`,
and the templates render from the returned document alone. The document holds
only JSON-compatible values, so it can be dumped, diffed and tested directly.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from .. import validate
from ..errors import InvalidName
from ..records import Candidate, Counts, Deployment, Event, Exclusion, LineageEdge, ModelSummary, Version

DOCUMENT_SCHEMA = 1

# Code hosts whose commit pages we know how to link to, and the path that leads there.
_COMMIT_PATHS = {"github.com": "/commit/", "gitlab.com": "/-/commit/", "bitbucket.org": "/commits/"}
_COMMIT_ID = re.compile(r"^[0-9A-Za-z._-]{1,100}$")
_REPO_PATH = re.compile(r"^/[A-Za-z0-9._~/-]+$")
_SSH_REMOTE = re.compile(r"^(?:ssh://)?git@([A-Za-z0-9.-]+)[:/](.+)$")

RECENT = 10
AUDIT_LATEST = 100   # events on the audit log's first page (every event is on its month's page)
# Events in a target's history on its page (every one is on its month's page of the audit log):
# at 10,000 models a target's whole history was 20,000 events, 37 MB of a 49 MB page.
TARGET_LATEST = 500
# Events on a page of an audit month: a busier month is split into pages of this many, counted from
# its first event, so that a new event changes the month's last page only. At 10,000 models a month
# held ~35,000 events: a 20 MB page, which no browser shows at 3 a.m. either.
AUDIT_PAGE = 1000


@dataclass(frozen=True)
class SiteRecords:
    """Everything read from the lake for one build (the generator's only input)."""

    versions: Sequence[Version]
    deployments: Sequence[Deployment]
    events: Sequence[Event]            # the audit_log view (registrations included), any order
    candidates: Sequence[Candidate]
    lineage: Sequence[LineageEdge]     # direct edges only (depth 1)
    summaries: Sequence[ModelSummary]  # Registry.list(): each model's owner, description and tags
    counts: Counts                     # Registry.counts(): what the home and audit pages count
    generated_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    lake: str | None = None
    excluded: Sequence[Exclusion] = ()  # the rollback_excluded view: ran on a target, not a candidate


def iso(value: datetime | None) -> str | None:
    """``2026-12-03T08:06:00Z``: the moment in UTC, to the second (a naive time is taken as UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(timespec="seconds") + "Z"
    if value.utcoffset():
        value = value.astimezone(timezone.utc)
    return value.isoformat(timespec="seconds")[:19] + "Z"   # (without its "+00:00")


# (whitespace, str.isspace()'s, and control characters: never in a link the site writes)
_NOT_IN_URL = re.compile(r"[\s\x00-\x1f]")


def is_web_url(url: str | None) -> bool:
    """True for http(s) URLs with a host: the only addresses the site renders as links."""
    if not isinstance(url, str) or not url or _NOT_IN_URL.search(url):
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def commit_url(repo: str | None, commit: str | None) -> str | None:
    """The web page of ``commit`` when ``repo`` lives on GitHub, GitLab or Bitbucket."""
    if not repo or not commit or not _COMMIT_ID.match(commit):
        return None
    ssh = _SSH_REMOTE.match(repo)
    if ssh:
        host, path = ssh.group(1).lower(), "/" + ssh.group(2)
    else:
        parts = urlsplit(repo)
        if parts.scheme.lower() not in ("http", "https", "git") or parts.query or parts.fragment:
            return None
        host, path = (parts.hostname or "").lower(), parts.path
    host = host.removeprefix("www.")
    if host not in _COMMIT_PATHS:
        return None
    path = path.rstrip("/").removesuffix(".git")
    if not _REPO_PATH.match(path) or path.count("/") < 2 or ".." in path:
        return None
    return f"https://{host}{path}{_COMMIT_PATHS[host]}{commit}"


def dashboard_links(
    version: Version, target: str | None, templates: Mapping[str, str], problems: list[str]
) -> list[dict[str, Any]]:
    """A version's own dashboards plus configured templates, each marked link-or-text."""
    links: list[dict[str, Any]] = []
    for name, url in sorted(version.dashboards.items()):
        links.append(_dashboard(name, url, f"{version.model} v{version.version}", problems))
    if target is not None:
        values = {"model": version.model, "version": str(version.version), "target": target}
        for name, template in sorted(templates.items()):
            try:
                url = template.format_map({k: quote(v, safe="") for k, v in values.items()})
            except (KeyError, IndexError, ValueError) as exc:
                problems.append(f"dashboard template {name!r} cannot be filled in: {exc!s}; "
                                "use only {model}, {version} and {target}")
                continue
            shown = name if name not in version.dashboards else f"{name} (site)"
            links.append(_dashboard(shown, url, f"{version.model}@{target}", problems, source="config"))
    return links


def _dashboard(name: str, url: str, where: str, problems: list[str], source: str = "version") -> dict[str, Any]:
    link = is_web_url(url)
    if not link:
        problems.append(f"dashboard {name!r} of {where} is not an http(s) URL; shown as text, not a link")
    return {"name": name, "url": url, "link": link, "source": source}


def _version_doc(v: Version) -> dict[str, Any]:
    return {
        "version": v.version,
        "anchor": f"v{v.version}",
        "state": v.state,
        "state_at": iso(v.state_at),
        "state_by": v.state_by,
        "deployed_to": list(v.deployed_to),
        "created_at": iso(v.created_at),
        "created_by": v.created_by,
        "owner": v.owner,
        "description": v.description,
        "tags": [[k, val] for k, val in sorted(v.tags.items())],
        "metrics": [[k, val] for k, val in sorted(v.metrics.items())],
        "params": [[k, str(val)] for k, val in sorted(v.params.items())],
        "code": {
            "repo": v.code_repo,
            "version": v.code_version,
            "dirty": v.code_dirty,
            "url": commit_url(v.code_repo, v.code_version),
        },
        "runtime_image": v.runtime_image,
        "data_refs": list(v.data_refs),
        "parents": [{"model": p.model, "version": p.version, "relation": p.relation} for p in v.parents],
        "artifact_uri": v.artifact_uri,
        "artifact_sha256": v.artifact_sha256,
        "artifact_bytes": v.artifact_bytes,
    }


def _event_doc(e: Event) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "at": iso(e.at),
        "actor": e.actor,
        "model": e.model,
        "version": e.version,
        "kind": e.kind,
        "state": e.state,
        "target": e.target,
        "note": e.note,
        "evidence": e.evidence if isinstance(e.evidence, dict) else {},
        # what a create, describe or tag event set, the old name of a rename, and for an
        # imported event where it came from and who brought it across when
        "description": e.description,
        "tags": [[k, v] for k, v in sorted(e.tags.items())],
        "tags_deleted": list(e.tags_deleted),
        "renamed_from": e.renamed_from,
        "origin": dict(sorted(e.origin.items())),
        "imported_at": iso(e.imported_at),
        "imported_by": e.imported_by,
    }


def _newest_first(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=lambda e: (e.at, e.event_id), reverse=True)


def page_segment(name: str) -> str | None:
    """The folder name of a model's or target's page (``validate.path_segment``: a plain
    lowercase name is its own segment, any other becomes ``~`` + base32), or None when the
    name cannot be one (a forged row): such a model is listed but gets no page."""
    try:
        return validate.path_segment(name)
    except (InvalidName, TypeError):
        return None


def search_boost(name: str) -> float:
    """The search weight of the page of ``name``: a shorter name weighs more, so that the
    exact name ranks first (``churn`` above ``churn-distilled``, which also holds the word).

    Material's search scores a page by the query words its title holds, times this boost.
    A page whose title *is* the query holds all n words; another title holding k < n of
    them is at least 2k - 1 characters long, and k * (1 + 1/(2k - 1)) <= k + 1 <= n, below
    the exact page's n * (1 + 1/len); a longer title holding all n words weighs less too.
    """
    return round(1 + 1 / max(1, len(name)), 6)


def shell_command(*words: str) -> str:
    """A command line to copy into a shell, each word quoted when it needs to be."""
    return " ".join(shlex.quote(w) for w in words)


_PLACEHOLDER_NOTE = "why you roll back"


def rollback_command(model: str, target: str, version: int) -> str:
    """The exact ``catalog rollback`` that moves ``target`` back to ``version`` of ``model``."""
    return shell_command("catalog", "rollback", model, "--target", target, "--to", str(version),
                         "--note", _PLACEHOLDER_NOTE)


def split_ref(ref: str, kind: str = "data") -> tuple[str, str]:
    """A data, code or image reference → (what it names, which snapshot, commit or tag of it).

    ``bq://acme.analytics.sessions@snapshot-1201`` → (``bq://acme.analytics.sessions``,
    ``@snapshot-1201``); ``https://github.com/acme/churn@9969e58`` → (repository, ``@9969e58``);
    ``ghcr.io/acme/train:1.5`` (an image) → (``ghcr.io/acme/train``, ``:1.5``); a query string
    or fragment is the variant too. A reference with none of these is all source (``""`` left).
    """
    head, mark, tail = ref.rpartition("@")
    if mark and head and tail and "/" not in tail and re.search(r"[./]", head.split("://", 1)[-1]):
        return head, mark + tail
    for sep in ("?", "#"):
        head, mark, tail = ref.partition(sep)
        if mark and head and tail:
            return head, mark + tail
    if kind == "image":
        head, mark, tail = ref.rpartition(":")
        if mark and head and tail and "/" not in tail:
            return head, mark + tail
    return ref, ""


def _version_span(versions: Iterable[int]) -> str:
    """``[1, 2, 3, 5, 7, 8]`` → ``v1–v3, v5, v7, v8`` (runs of three or more as a range)."""
    runs: list[list[int]] = []
    for v in sorted(set(versions)):
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    words = [f"v{r[0]}\u2013v{r[-1]}" if len(r) > 2 else ", ".join(f"v{v}" for v in r) for r in runs]
    return ", ".join(words)


_NOUNS = {"data": "snapshots", "code": "commits", "image": "tags"}


def group_refs(kind: str, uses: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """(reference, version) pairs of one kind → one group per source, with what differs.

    References with no marked variant that share a parent folder (``.../dt=2026-10-01`` and
    ``.../dt=2026-10-02``) are grouped under that folder, the last segment being the variant.
    """
    pairs = sorted(set(uses))
    split = {ref: split_ref(ref, kind) for ref, _ in pairs}
    plain = [ref for ref, (_, detail) in split.items() if not detail]
    folders: dict[str, list[str]] = defaultdict(list)
    for ref in plain:
        head, slash, tail = ref.rstrip("/").rpartition("/")
        if slash and tail and not head.endswith(("/", ":")):
            folders[head].append(ref)
    for head, refs in folders.items():
        if len(refs) > 1:
            for ref in refs:
                split[ref] = (head, ref[len(head):])
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for ref, version in pairs:
        source, _ = split[ref]
        groups[source][ref].append(version)
    out = []
    for source, by_ref in sorted(groups.items()):
        variants = [
            {"ref": ref, "common": source, "detail": ref[len(source):], "versions": sorted(vs),
             "span": _version_span(vs)}
            for ref, vs in sorted(by_ref.items(), key=lambda item: (min(item[1]), item[0]))
        ]
        every = [v for vs in by_ref.values() for v in vs]
        if len(variants) == 1:
            detail = variants[0]["detail"]
            summary = f"{detail} ({_version_span(every)})" if detail else f"used by {_version_span(every)}"
        else:
            summary = f"{len(variants)} {_NOUNS.get(kind, 'variants')} ({_version_span(every)})"
        out.append({"kind": kind, "source": source, "variants": variants, "summary": summary})
    return out


def make_document(records: SiteRecords, dashboard_templates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The data document: every model with its versions, deployments, lineage and history."""
    templates = dict(dashboard_templates or {})
    problems: dict[str, list[str]] = defaultdict(list)

    by_model: dict[str, list[Version]] = defaultdict(list)
    for v in records.versions:
        by_model[v.model].append(v)
    for versions in by_model.values():
        versions.sort(key=lambda v: v.version)
    version_of = {(v.model, v.version): v for v in records.versions}

    events = _newest_first(records.events)
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    event_docs = []
    for e in events:
        doc = _event_doc(e)
        event_docs.append(doc)
        history[e.model].append(doc)

    running: dict[str, list[dict[str, Any]]] = defaultdict(list)
    all_running: list[dict[str, Any]] = []
    for d in sorted(records.deployments, key=lambda d: (d.model, d.target)):
        shown = version_of.get((d.model, d.version))
        row: dict[str, Any] = {
            "model": d.model,
            "target": d.target,
            "version": d.version,
            "since": iso(d.since),
            "by": d.by,
            "how": d.how,
            "note": d.note,
            "artifact_uri": d.artifact_uri,
            "sha256": shown.artifact_sha256 if shown else None,
            "dashboards": dashboard_links(shown, d.target, templates, problems[d.model]) if shown else [],
        }
        running[d.model].append(row)
        all_running.append(row)

    candidates: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for c in sorted(records.candidates, key=lambda c: (c.model, c.target, c.rank)):
        candidates[c.model][c.target].append(
            {"version": c.version, "rank": c.rank, "last_deployed_at": iso(c.last_deployed_at),
             "artifact_uri": c.artifact_uri}
        )
    excluded: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for x in sorted(records.excluded, key=lambda x: (x.model, x.target, -x.last_deployed_at.timestamp(), -x.version)):
        excluded[x.model][x.target].append(
            {"version": x.version, "reason": x.reason, "detail": x.detail, "decided_at": iso(x.decided_at),
             "decided_by": x.decided_by, "note": x.note, "last_deployed_at": iso(x.last_deployed_at)}
        )

    upstream: dict[str, dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))
    children: dict[str, set[tuple[str, int, int, str]]] = defaultdict(set)
    for edge in records.lineage:
        if edge.depth != 1:
            continue
        up = upstream[edge.child_model]
        if edge.parent_kind == "model" and edge.parent_model is not None:
            up["model"].add((edge.parent_model, edge.parent_version or 0, edge.relation or "derived",
                             edge.child_version))
            children[edge.parent_model].add(
                (edge.child_model, edge.child_version, edge.parent_version or 0, edge.relation or "derived")
            )
        else:
            up[edge.parent_kind].add((edge.parent, edge.child_version))

    summary_of = {s.model: s for s in records.summaries}
    models: list[dict[str, Any]] = []
    for name in sorted(set(by_model) | set(summary_of)):
        versions = by_model.get(name, [])   # none for a model created with no version yet
        summary = summary_of.get(name)
        if summary is None:
            problems[name].append("versions without a model row in the models view; listed from its versions")
        approved = [v.version for v in versions if v.state == "approved"]
        up = upstream.get(name, {})
        parents: dict[str, list[int]] = defaultdict(list)
        parent_uses: dict[tuple[str, int, str], list[int]] = defaultdict(list)
        for model, version, relation, child_version in sorted(up.get("model", ())):
            if version not in parents[model]:
                parents[model].append(version)
            parent_uses[(model, version, relation)].append(child_version)
        derived: dict[str, list[int]] = defaultdict(list)
        derived_uses: dict[tuple[str, int, str], list[int]] = defaultdict(list)
        for child, child_version, parent_version, relation in sorted(children.get(name, ())):
            if child_version not in derived[child]:
                derived[child].append(child_version)
            derived_uses[(child, parent_version, relation)].append(child_version)
        version_docs = [_version_doc(v) for v in versions]
        for v, doc in zip(versions, version_docs):
            doc["dashboards"] = dashboard_links(v, None, templates, problems[name])
        segment = page_segment(name)
        if segment is None:
            problems[name].append("the model name cannot be a page's folder name; listed without a page")
        updated = [v.created_at for v in versions] + ([summary.updated_at] if summary and summary.updated_at else [])
        models.append({
            "name": name,
            "segment": segment,
            "url": f"models/{segment}/" if segment else None,
            "search_boost": search_boost(name),
            "owner": summary.owner if summary else versions[-1].owner,
            "description": summary.description if summary else versions[-1].description,
            "tags": [[k, val] for k, val in sorted((summary.tags if summary else versions[-1].tags).items())],
            "latest_version": versions[-1].version if versions else None,
            "latest_approved": max(approved) if approved else None,
            "updated_at": iso(max(updated)) if updated else None,
            "versions": version_docs,
            "metric_names": sorted({k for v in versions for k in v.metrics}),
            "running": running.get(name, []),
            "candidates": {t: rows for t, rows in sorted(candidates.get(name, {}).items())},
            # per target that the model ran on: the versions it cannot roll back to, and why
            "rollback_excluded": {t: rows for t, rows in sorted(excluded.get(name, {}).items())},
            "lineage": {
                "parents": [{"model": m, "versions": vs} for m, vs in sorted(parents.items())],
                # per kind, one group per dataset / repository / image, with what differs per version
                "data": group_refs("data", up.get("data", ())),
                "code": group_refs("code", up.get("code", ())),
                "image": group_refs("image", up.get("image", ())),
                "children": [{"model": m, "versions": vs} for m, vs in sorted(derived.items())],
                "parent_uses": [
                    {"model": m, "version": v, "relation": rel, "span": _version_span(used)}
                    for (m, v, rel), used in sorted(parent_uses.items())
                ],
                "derived_uses": [
                    {"model": m, "from_version": v, "relation": rel, "versions": sorted(used),
                     "span": _version_span(used)}
                    for (m, v, rel), used in sorted(derived_uses.items())
                ],
            },
            "history": history.get(name, []),
        })

    owners: dict[str, list[str]] = defaultdict(list)
    tags: dict[tuple[str, str], list[str]] = defaultdict(list)
    for m in models:
        owners[m["owner"] or ""].append(m["name"])
        for key, value in m["tags"]:
            tags[(key, value)].append(m["name"])
    # Owners and tags are free text: their anchors are numbered, never derived from the text.
    owner_anchor = {o: f"owner-{i}" for i, o in enumerate(sorted(owners), 1)}
    tag_anchor = {t: f"tag-{i}" for i, t in enumerate(sorted(tags), 1)}
    for m in models:
        m["owner_anchor"] = owner_anchor[m["owner"] or ""]
        m["tag_links"] = [{"key": k, "value": v, "anchor": tag_anchor[(k, v)]} for k, v in m["tags"]]
    targets = _targets(all_running, event_docs, events, candidates, excluded, problems)
    months = audit_months(event_docs)

    return {
        "schema": DOCUMENT_SCHEMA,
        "generated_at": iso(records.generated_at),
        "lake": records.lake,
        "counts": {
            **records.counts.to_dict(),
            "deployments": len(all_running),
            "targets": len({r["target"] for r in all_running}),
            "owners": len(owners),
            "tags": len(tags),
        },
        "models": models,
        "owners": [{"owner": o, "anchor": owner_anchor[o], "models": sorted(ms)} for o, ms in sorted(owners.items())],
        "targets": targets,
        "model_urls": {m["name"]: m["url"] for m in models if m["url"]},
        # the versions each model page shows (a deleted one has no anchor to link to)
        "shown_versions": {m["name"]: [v["version"] for v in m["versions"]] for m in models if m["url"]},
        "target_urls": {t["target"]: t["url"] for t in targets if t["url"]},
        "tags": [{"key": k, "value": v, "anchor": tag_anchor[(k, v)], "models": sorted(ms)}
                 for (k, v), ms in sorted(tags.items())],
        "running": sorted(all_running, key=lambda r: (r["target"], r["model"])),
        "recent_registrations": [e for e in event_docs if e["kind"] == "register"][:RECENT],
        "recent_decisions": [e for e in event_docs if e["kind"] != "register"][:RECENT],
        "events": event_docs,
        "audit_latest": event_docs[:AUDIT_LATEST],
        "audit_months": [{k: v for k, v in m.items() if k != "events"} for m in months],
        "audit_pages": audit_pages(months),
        "problems": {m: sorted(set(p)) for m, p in sorted(problems.items()) if p},
    }


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def audit_months(event_docs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The audit log by calendar month (UTC), newest first: each month's pages hold its events, so
    a decision re-renders this month's last page, not the whole log.

    A month of more than :data:`AUDIT_PAGE` events has several pages, counted from its first event:
    page ``k`` holds events ``(k-1)*AUDIT_PAGE+1`` to ``k*AUDIT_PAGE`` of the month (newest first on
    the page). Its last page, with the latest events, is the month's own address (``audit/2026-03/``),
    the others are ``audit/2026-03/<k>/``. Each month: its counts, its ``pages`` (number, address,
    first and last event number) and ``events``; the pages are in :func:`audit_pages`."""
    by_month: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in event_docs:   # (newest first already)
        at = e.get("at") or ""
        by_month[at[:7] if len(at) >= 7 and at[4] == "-" else "undated"].append(e)
    out = []
    for month in sorted(by_month, reverse=True):
        found = by_month[month]
        registrations = sum(1 for e in found if e["kind"] == "register")
        label = (f"{_MONTHS[int(month[5:7]) - 1]} {month[:4]}" if month != "undated" and month[5:7].isdigit()
                 and 1 <= int(month[5:7]) <= 12 else month)
        count = -(-len(found) // AUDIT_PAGE)
        pages = [{"page": k, "first": (k - 1) * AUDIT_PAGE + 1, "last": min(k * AUDIT_PAGE, len(found)),
                  "url": f"audit/{month}/" if k == count else f"audit/{month}/{k}/",
                  "path": f"audit/{month}.md" if k == count else f"audit/{month}/{k}.md"} for k in range(1, count + 1)]
        out.append({"month": month, "label": label, "url": f"audit/{month}/", "events": found, "total": len(found),
                    "registrations": registrations, "decisions": len(found) - registrations, "pages": pages})
    return out


def audit_pages(months: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One page of the audit log per page of each month (:func:`audit_months`), each with its events
    (newest first), its number, the month's label and address, and the addresses of the pages next
    to it (``older``, ``newer``: None at the ends). The month's last page (``last_page``) also has the
    month's counts and every page of it; the others hold only what does not change as the month
    goes on, so that a decision re-renders the last page alone."""
    out = []
    for month in months:
        found, pages, total = month["events"], month["pages"], month["total"]
        for i, page in enumerate(pages):
            entry = {"month": month["month"], "label": month["label"], "latest": month["url"], "page": page["page"],
                     "first": page["first"], "last": page["last"], "url": page["url"], "path": page["path"],
                     "older": pages[i - 1]["url"] if i else None,
                     "newer": pages[i + 1]["url"] if i + 1 < len(pages) else None,
                     "last_page": i + 1 == len(pages),
                     # (found is newest first: the month's event n is found[total - n])
                     "events": found[total - page["last"]:total - page["first"] + 1]}
            if entry["last_page"]:
                entry.update(total=total, registrations=month["registrations"], decisions=month["decisions"],
                             pages=pages)
            out.append(entry)
    return out


def _targets(running: list[dict[str, Any]], event_docs: list[dict[str, Any]], events: Sequence[Event],
             candidates: Mapping[str, Mapping[str, list[dict[str, Any]]]],
             excluded: Mapping[str, Mapping[str, list[dict[str, Any]]]],
             problems: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One entry per target that runs or ran something: the incident page's data.

    For each model it runs now: the version, since when and by whom, who approved that
    version, its dashboards, and the first rollback choice with the exact command; then
    the target's own history (deploys, rollbacks, undeploys), newest first: the latest
    :data:`TARGET_LATEST`, and how many there are.
    """
    approvers: dict[tuple[str, int], list[str]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e.at, e.event_id)):
        if e.kind == "approve" and e.version is not None and e.actor not in approvers[(e.model, e.version)]:
            approvers[(e.model, e.version)].append(e.actor)
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in event_docs:
        if doc["target"]:
            history[doc["target"]].append(doc)
    rows_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(running, key=lambda r: (r["target"], r["model"])):
        row["approved_by"] = approvers.get((row["model"], row["version"]), [])
        choices = candidates.get(row["model"], {}).get(row["target"]) or []
        first = choices[0] if choices else None
        row["rollback"] = None if first is None else {
            "version": first["version"], "last_deployed_at": first["last_deployed_at"],
            "command": rollback_command(row["model"], row["target"], first["version"]),
        }
        # why the versions that ran here before are not choices (rolled back from, deprecated)
        row["not_choices"] = [x for x in excluded.get(row["model"], {}).get(row["target"], [])
                              if x["version"] != row["version"]]
        rows_of[row["target"]].append(row)
    out = []
    for target in sorted(set(rows_of) | set(history)):
        segment = page_segment(target)
        if segment is None:
            problems[target].append("the target name cannot be a page's folder name; listed without a page")
        latest = history[target][0] if history.get(target) else None
        out.append({
            "target": target,
            "segment": segment,
            "url": f"targets/{segment}/" if segment else None,
            "search_boost": search_boost(target),
            "deployments": rows_of.get(target, []),
            "history": history.get(target, [])[:TARGET_LATEST],
            "history_total": len(history.get(target, [])),
            "history_command": shell_command("catalog", "history", "--target", target),
            "last_change": latest,
        })
    return out


def api_models(document: Mapping[str, Any]) -> dict[str, Any]:
    """``api/models.json``: every model, its versions and states, and where it runs."""
    return {
        "schema": DOCUMENT_SCHEMA,
        "generated_at": document["generated_at"],
        "models": [
            {
                "model": m["name"],
                "owner": m["owner"],
                "description": m["description"],
                "tags": dict(m["tags"]),
                "latest_version": m["latest_version"],
                "latest_approved": m["latest_approved"],
                "page": m["url"],
                "versions": [
                    {"version": v["version"], "state": v["state"], "deployed_to": v["deployed_to"],
                     "artifact_uri": v["artifact_uri"], "sha256": v["artifact_sha256"],
                     "created_at": v["created_at"], "created_by": v["created_by"]}
                    for v in m["versions"]
                ],
                "deployments": [_api_deployment(d) for d in m["running"]],
            }
            for m in document["models"]
        ],
    }


def api_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """``api/models/<model>.json``: what each target runs now, as of the model's last change
    (``updated_at``; no build time, so the file changes only when the model does)."""
    return {
        "schema": DOCUMENT_SCHEMA,
        "updated_at": model["updated_at"],
        "model": model["name"],
        "latest_approved": model["latest_approved"],
        "deployments": [_api_deployment(d) for d in model["running"]],
    }


def _api_deployment(d: Mapping[str, Any]) -> dict[str, Any]:
    return {"model": d["model"], "target": d["target"], "version": d["version"],
            "artifact_uri": d["artifact_uri"], "sha256": d["sha256"], "since": d["since"], "by": d["by"]}
