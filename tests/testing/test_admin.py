"""The loopback admin API fakes: fed by the provider server, in the documented shapes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
from anthropic import Anthropic
from openai import OpenAI

from usagetap.testing import ProviderServer
from usagetap.testing.admin import AdminServer


def _start(days_ago: int) -> int:
    day = datetime.now(timezone.utc).date() - timedelta(days=days_ago)
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def test_the_openai_fake_pages_daily_buckets_by_limit_and_next_page(server: ProviderServer) -> None:
    with AdminServer(server, "openai", admin_key="adm", page_size=2) as admin:
        params: dict[str, str] = {
            "start_time": str(_start(4)),
            "end_time": str(_start(-1)),
            "bucket_width": "1d",
        }
        pages = []
        with httpx.Client(base_url=admin.url, headers={"Authorization": "Bearer adm"}) as http:
            while True:
                page = http.get("/organization/usage/completions", params=params).json()
                pages.append(page)
                if not page["has_more"]:
                    break
                params["page"] = page["next_page"]
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [b["start_time"] for p in pages for b in p["data"]] == [_start(n) for n in (4, 3, 2, 1, 0)]


def test_the_openai_fake_counts_calls_by_project_header_and_model(server: ProviderServer) -> None:
    with AdminServer(server, "openai", admin_key="adm") as admin:
        client = OpenAI(base_url=server.openai_url, api_key="sk-1", project="proj_blue")
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a b c"}])
        params = [("start_time", str(_start(0))), ("group_by", "model"), ("group_by", "project_id")]
        with httpx.Client(base_url=admin.url, headers={"Authorization": "Bearer adm"}) as http:
            body = http.get("/organization/usage/completions", params=params).json()
    (result,) = body["data"][0]["results"]
    issued = server.totals()
    assert (result["model"], result["project_id"], result["num_model_requests"]) == (
        "gpt-4o-mini",
        "proj_blue",
        1,
    )
    assert (result["input_tokens"], result["output_tokens"]) == (
        issued["input_tokens"],
        issued["output_tokens"],
    )
    assert result["api_key_id"] is None  # not grouped by it


def test_the_anthropic_fake_reports_workspaces_and_costs_in_cents(server: ProviderServer) -> None:
    with AdminServer(server, "anthropic", admin_key="adm", workspaces={"sk-ant-1": "wrkspc_a"}) as admin:
        client = Anthropic(base_url=server.anthropic_url, api_key="sk-ant-1")
        client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        day = datetime.now(timezone.utc).date().isoformat()
        params = [
            ("starting_at", f"{day}T00:00:00Z"),
            ("group_by[]", "workspace_id"),
            ("group_by[]", "description"),
        ]
        with httpx.Client(base_url=admin.url, headers={"x-api-key": "adm"}) as http:
            body = http.get("/v1/organizations/cost_report", params=params).json()
    (result,) = body["data"][0]["results"]
    assert (result["workspace_id"], result["model"], result["currency"]) == (
        "wrkspc_a",
        "claude-3-5-haiku-latest",
        "USD",
    )
    assert result["amount"] == str(admin.cost_of(server.issued) * 100)


def test_the_fakes_refuse_another_key_and_answer_404_for_analytics_unless_asked(
    server: ProviderServer,
) -> None:
    with AdminServer(server, "anthropic", admin_key="adm") as admin, httpx.Client(base_url=admin.url) as http:
        refused = http.get("/v1/organizations/cost_report", headers={"x-api-key": "wrong"})
        missing = http.get("/v1/organizations/analytics/usage", headers={"x-api-key": "adm"})
    assert (refused.status_code, missing.status_code) == (401, 404)


def test_the_openai_fake_ignores_anthropic_calls(server: ProviderServer) -> None:
    with AdminServer(server, "openai") as admin:
        Anthropic(base_url=server.anthropic_url, api_key="k").messages.create(
            model="claude-3-5-haiku-latest", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert admin.usage == []


def test_the_analytics_fake_pages_rows_by_day_and_group(server: ProviderServer) -> None:
    with AdminServer(server, "anthropic", admin_key="adm", analytics=True, page_size=1) as admin:
        client = Anthropic(base_url=server.anthropic_url, api_key="k")
        for model in ("claude-3-5-haiku-latest", "claude-sonnet-4-0"):
            client.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        day = datetime.now(timezone.utc).date()
        params = {
            "starting_at": f"{day.isoformat()}T00:00:00Z",
            "ending_at": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
            "time_bucket_width": "1d",
            "group_by[]": "model",
        }
        with httpx.Client(base_url=admin.url, headers={"x-api-key": "adm"}) as http:
            first = http.get("/v1/organizations/analytics/usage", params=params).json()
            second = http.get(
                "/v1/organizations/analytics/usage", params={**params, "page": first["next_page"]}
            ).json()
    assert (first["has_more"], second["has_more"]) == (True, False)
    rows = first["data"] + second["data"]
    assert sorted(r["group"]["model"] for r in rows) == ["claude-3-5-haiku-latest", "claude-sonnet-4-0"]
    assert all(r["usage"]["requests"] == 1 and r["group"]["workspace_id"] is None for r in rows)


OPENAI_KEYS = [f"sk-proj-{n}Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4Vb6-k{n:03d}" for n in range(3)]


def test_the_openai_fake_lists_a_projects_keys_with_redacted_values_paged_by_after(
    server: ProviderServer,
) -> None:
    with AdminServer(server, "openai", admin_key="adm") as admin:
        for key in OPENAI_KEYS:
            client = OpenAI(base_url=server.openai_url, api_key=key, project="proj_blue")
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
        pages = []
        params = {"limit": "2"}
        with httpx.Client(base_url=admin.url, headers={"Authorization": "Bearer adm"}) as http:
            while True:
                page = http.get("/organization/projects/proj_blue/api_keys", params=params).json()
                pages.append(page)
                if not page["has_more"]:
                    break
                params["after"] = page["last_id"]
            other = http.get("/organization/projects/proj_red/api_keys").json()
        ids = [admin.key_id(key) for key in OPENAI_KEYS]
    assert [[k["id"] for k in p["data"]] for p in pages] == [ids[:2], ids[2:]]
    first = pages[0]["data"][0]
    assert (first["object"], first["redacted_value"]) == ("organization.project.api_key", "sk-pro...000")
    assert other["data"] == []


def test_the_anthropic_fake_lists_keys_with_partial_key_hints_paged_by_after_id(
    server: ProviderServer,
) -> None:
    keys = [f"sk-ant-api03-{n}Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4Vb6Nm8-k{n:03d}AA" for n in range(2)]
    with AdminServer(server, "anthropic", admin_key="adm", workspaces={keys[1]: "wrkspc_1"}) as admin:
        for key in keys:
            Anthropic(base_url=server.anthropic_url, api_key=key).messages.create(
                model="claude-3-5-haiku-latest", max_tokens=8, messages=[{"role": "user", "content": "a"}]
            )
        with httpx.Client(base_url=admin.url, headers={"x-api-key": "adm"}) as http:
            first = http.get("/v1/organizations/api_keys", params={"limit": "1"}).json()
            second = http.get(
                "/v1/organizations/api_keys", params={"limit": "1", "after_id": first["last_id"]}
            ).json()
    assert (first["has_more"], second["has_more"]) == (True, False)
    listed = first["data"][0]
    assert (listed["id"], listed["type"], listed["partial_key_hint"], listed["workspace_id"]) == (
        admin.key_id(keys[0]),
        "api_key",
        "sk-ant-api03-0Qw...00AA",
        None,
    )
    assert second["data"][0]["workspace_id"] == "wrkspc_1"
