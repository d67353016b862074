"""The app's own tests, on usagetap's fixtures: usagetap_records, usagetap_provider, usagetap_backend."""

import anthropic
import openai
import pytest
from billing_app import summarize, translate

import usagetap
from usagetap.sinks import Spaire


def test_a_summary_is_billed_to_its_customer(usagetap_records, usagetap_provider):
    client = usagetap.wrap(openai.OpenAI(base_url=usagetap_provider.openai_url, api_key="test"))
    summarize(client, "quarterly numbers", customer="org_7")
    usagetap.flush()
    [record] = usagetap_records.records
    assert (record.customer, record.provider) == ("org_7", "openai")
    assert record.input_tokens == usagetap_provider.totals()["input_tokens"]


def test_a_translation_is_billed_as_anthropic_usage(usagetap_records, usagetap_provider):
    client = usagetap.wrap(anthropic.Anthropic(base_url=usagetap_provider.anthropic_url, api_key="test"))
    translate(client, "bonjour le monde", customer="org_8")
    usagetap.flush()
    [record] = usagetap_records.records
    assert (record.customer, record.provider) == ("org_8", "anthropic")
    assert record.output_tokens == usagetap_provider.totals()["output_tokens"]


@pytest.mark.parametrize("usagetap_backend", ["spaire"], indirect=True)
def test_usage_reaches_the_billing_backend(usagetap_backend, usagetap_provider, usagetap_records):
    usagetap.configure(sink=Spaire(api_key=usagetap_backend.api_key, base_url=usagetap_backend.url))
    client = usagetap.wrap(openai.OpenAI(base_url=usagetap_provider.openai_url, api_key="test"))
    summarize(client, "a long report", customer="org_9")
    usagetap.flush()
    assert usagetap_backend.totals()["org_9"]["events"] == 1


def test_backends_are_made_by_name(usagetap_backend):
    backend = usagetap_backend("openmeter")
    assert backend.name == "openmeter" and backend.events == {}


@pytest.mark.usagetap_attributed
def test_attributed_usage_passes_the_marker(usagetap_provider):
    client = usagetap.wrap(openai.OpenAI(base_url=usagetap_provider.openai_url, api_key="test"))
    summarize(client, "minutes", customer="org_1")


@pytest.mark.usagetap_attributed
def test_usage_escaping_unattributed_fails_on_purpose(usagetap_provider):
    client = usagetap.wrap(openai.OpenAI(base_url=usagetap_provider.openai_url, api_key="test"))
    summarize(client, "minutes", customer=None)
