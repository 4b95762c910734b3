"""Rasa 3 NLU data with entity annotations, and the entity extractor that learns from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.encoders.paths import default_encoder_path
from bot.nlu.entities import LOOKUP, REGEX, TAGGER, EntityExtractor
from bot.nlu.errors import DataError
from bot.nlu.rasa_nlu import EntitySpan, read_rasa_nlu_data

HELPDESK = Path("/work/shared/rasa_projects/helpdesk-assistant")

# A bike shop of our own: rentals and repairs in a few cities.
BIKE_SHOP = """version: "3.1"
nlu:
- intent: book_repair
  examples: |
    - can you fix my bike [tomorrow](date)
    - I'd like to book a repair for [friday](date)
    - is there a slot [next week](date) for a tune-up
    - my brakes squeak, can I come in [today](date)
    - book a service in [Berlin](city) for [monday](date)
    - please schedule a repair at your [Hamburg](city) shop
    - I need new tyres fitted [tomorrow](date) in [Munich](city)
    - can the [Leipzig](city) workshop look at my gears on [saturday](date)
    - repair appointment [next week](date) please
    - the chain came off, can you help [today](date)
    - my order [BK-204518](order_id) needs a repair
- intent: rent_bike
  examples: |
    - I want to rent an [e-bike]{"entity": "bike_type", "value": "electric"} in [Cologne](city)
    - do you have a [mountain bike](bike_type) for [the weekend](date)
    - rent me a [road bike](bike_type) in [Berlin](city)
    - can I hire a [cargo bike](bike_type) [tomorrow](date)
    - I'd like an [ebike]{"entity": "bike_type", "value": "electric"} for [friday](date)
    - any [tandem](bike_type) available in [Dresden](city)
    - hire a bike in [Munich](city) on [sunday](date)
    - rent a [city bike](bike_type) for [today](date)
    - are [e-bikes]{"entity": "bike_type", "value": "electric"} available in [Hamburg](city)
    - I need a bike for two days
    - collect at the [Main Station]{PICKUP} and return it at the [Harbour]{DROPOFF}
    - pick it up at the [Harbour]{PICKUP}, drop it at the [Old Town]{DROPOFF}
    - I'll collect at the [Old Town]{PICKUP} and drop it off at the [Main Station]{DROPOFF}
- intent: store_hours
  examples: |
    - when does the [Cologne](city) store open
    - what are your opening hours in [Dresden](city)
    - is the shop in [Leipzig](city) open on [sunday](date)
    - are you open [today](date)
    - when do you close
    - opening times please
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
- lookup: bike_brand
  examples: |
    - Gazelle
    - Brompton
    - Riese & Müller
- synonym: electric
  examples: |
    - pedelec
- regex: order_id
  examples: |
    - \\bBK-\\d{6}\\b
- regex: greet
  examples: |
    - \\bhey\\b
""".replace("{PICKUP}", '{"entity": "station", "role": "pickup"}').replace(
    "{DROPOFF}", '{"entity": "station", "role": "dropoff"}')

SENTENCES = [
    "could you fix my brakes in Munich on monday",
    "I would like to rent an e-bike in Hamburg",
    "where is order BK-777123",
    "do you service a riese & müller or a Brompton",
    "my address is jane.doe@example.com, thanks",
]


def _write(tmp_path: Path, text: str, name: str = "nlu.yml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _nlu(body: str) -> str:
    return 'version: "3.1"\nnlu:\n' + body


def _one(entities: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [e for e in entities if e["entity"] == name]
    assert len(found) == 1, entities
    return found[0]


# ------------------------------------------------------------------------------------ reading data

def test_every_annotation_form_becomes_a_span_into_the_plain_text(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("""- intent: rent
  examples: |
    - a [road bike](bike_type) in [Bonn](city:bonn_de) please
    - hire an [e-bike]{"entity": "bike_type", "value": "electric", "role": "rental", "group": "1"}
    - from [Kiel][{"entity": "city"}, {"entity": "location", "role": "origin"}] today
"""))
    data = read_rasa_nlu_data([path])
    first, second, third = data.examples
    assert first.text == "a road bike in Bonn please" and first.intent == "rent"
    assert first.entities == (EntitySpan(2, 11, "road bike", "bike_type"),
                              EntitySpan(15, 19, "bonn_de", "city"))
    assert second.text == "hire an e-bike"
    assert second.entities == (EntitySpan(8, 14, "electric", "bike_type", "rental", "1"),)
    assert third.text == "from Kiel today"
    assert [(s.entity, s.role) for s in third.entities] == [("city", None), ("location", "origin")]
    for example in data.examples:
        for span in example.entities:
            assert example.text[span.start:span.end] in {"road bike", "Bonn", "e-bike", "Kiel"}


def test_list_form_examples_with_metadata(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("""- intent: greet
  metadata:
    sentiment: neutral
  examples:
  - text: |
      good [morning](daytime)
    metadata:
      sentiment: happy
  - text: hello there
"""))
    data = read_rasa_nlu_data([path])
    assert [e.text for e in data.examples] == ["good morning", "hello there"]
    assert data.examples[0].entities == (EntitySpan(5, 12, "morning", "daytime"),)
    assert data.notices == []


def test_synonyms_come_from_annotations_and_synonym_blocks(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("""- intent: rent
  examples: |
    - an [E-Bike]{"entity": "bike_type", "value": "electric"}
    - a [roadster](bike_type:road)
    - a [tandem](bike_type)
- synonym: electric
  examples: |
    - Pedelec
"""))
    data = read_rasa_nlu_data([path])
    assert data.synonyms == {"e-bike": "electric", "roadster": "road", "pedelec": "electric"}


def test_regex_and_lookup_blocks(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("""- regex: frame_number
  examples: |
    - \\bFR\\d{8}\\b
- lookup: city
  examples: |
    - Bonn
    - Kiel
- lookup: city
  examples:
  - text: Ulm
"""))
    data = read_rasa_nlu_data([path])
    assert data.regexes == {"frame_number": [r"\bFR\d{8}\b"]}
    assert data.lookups == {"city": ["Bonn", "Kiel", "Ulm"]}
    assert data.examples == []


def test_unused_keys_and_blocks_are_noticed(tmp_path: Path) -> None:
    path = _write(tmp_path, """version: "3.1"
pipeline: []
nlu:
- intent: greet
  color: blue
  examples: |
    - hello
    this line has no dash
- responses: oops
""")
    notices = read_rasa_nlu_data([path]).notices
    assert len(notices) == 4
    assert any("'pipeline'" in n for n in notices)
    assert any("'color'" in n for n in notices)
    assert any("no dash" in n for n in notices)
    assert any("not an intent, synonym, regex or lookup block" in n for n in notices)


@pytest.mark.parametrize("example", [
    "ride to [Bonn](city",
    "ride to [Bonn]{\"entity\": city}",
    "ride to [Bonn]()",
    "ride to [Bonn]{\"value\": \"bonn\"}",
    "ride to [Bonn]{\"entity\": \"city\"",
])
def test_a_malformed_annotation_names_the_file_and_the_example(tmp_path: Path, example: str) -> None:
    path = _write(tmp_path, _nlu(f"- intent: ride\n  examples: |\n    - {example}\n"))
    with pytest.raises(DataError) as err:
        read_rasa_nlu_data([path])
    assert str(path) in str(err.value) and example in str(err.value)


def test_a_broken_regex_is_a_data_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("- regex: frame\n  examples: |\n    - FR(\\d+\n"))
    with pytest.raises(DataError, match="frame"):
        read_rasa_nlu_data([path])


def test_folders_are_read_recursively_and_only_nlu_documents_count(tmp_path: Path) -> None:
    _write(tmp_path, _nlu("- intent: greet\n  examples: |\n    - hello\n"), "data/nlu.yml")
    _write(tmp_path, _nlu("- intent: bye\n  examples: |\n    - bye\n"), "data/more/extra.yaml")
    _write(tmp_path, 'version: "3.1"\nstories:\n- story: s\n  steps: []\n', "data/stories.yml")
    _write(tmp_path, "not yaml at all: [", "data/notes.txt")
    data = read_rasa_nlu_data([tmp_path / "data"])
    assert sorted(e.text for e in data.examples) == ["bye", "hello"]
    assert data.notices == []


def test_yes_and_no_stay_words_as_in_yaml_1_2(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("- intent: affirm\n  examples:\n  - text: yes\n  - text: on\n"))
    assert [e.text for e in read_rasa_nlu_data([path]).examples] == ["yes", "on"]


def test_the_helpdesk_project_reads_with_its_entities_and_synonyms() -> None:
    data = read_rasa_nlu_data([HELPDESK / "data" / "nlu.yml"])
    with_entities = [e for e in data.examples if e.entities]
    assert len(with_entities) > 0
    assert {s.entity for e in with_entities for s in e.entities} == {"priority"}
    assert data.synonyms["urgent"] == "high"
    for example in with_entities:
        for span in example.entities:
            assert 0 <= span.start < span.end <= len(example.text)


# ------------------------------------------------------------------------------------ the extractor

@pytest.fixture(scope="module")
def bike_data(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return read_rasa_nlu_data([_write(tmp_path_factory.mktemp("bike"), BIKE_SHOP)])


@pytest.fixture(scope="module")
def trained(bike_data: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bike-entities")
    EntityExtractor.train(bike_data, default_encoder_path(), out, dimensions=["email"], seed=13)
    return out


@pytest.fixture(scope="module")
def extractor(trained: Path) -> EntityExtractor:
    return EntityExtractor.load(trained)


def test_an_unseen_sentence_gets_its_entities_at_the_right_offsets(extractor: EntityExtractor) -> None:
    text = SENTENCES[0]
    entities = extractor.extract(text)
    city, date = _one(entities, "city"), _one(entities, "date")
    assert (city["start"], city["end"], city["value"]) == (27, 33, "Munich")
    assert (date["start"], date["end"], date["value"]) == (37, 43, "monday")
    assert city["extractor"] == TAGGER and 0.5 < city["confidence_entity"] <= 1.0
    assert [e["start"] for e in entities] == sorted(e["start"] for e in entities)


def test_a_learned_synonym_maps_the_value(extractor: EntityExtractor) -> None:
    bike = _one(extractor.extract(SENTENCES[1]), "bike_type")
    assert SENTENCES[1][bike["start"]:bike["end"]] == "e-bike"
    assert bike["value"] == "electric" and bike["processors"] == ["EntitySynonymMapper"]


def test_roles_are_learned_as_part_of_the_tag(extractor: EntityExtractor) -> None:
    text = "pick it up at the Old Town and return it at the Harbour"
    stations = [e for e in extractor.extract(text) if e["entity"] == "station"]
    assert [(text[e["start"]:e["end"]], e["role"]) for e in stations] == [
        ("Old Town", "pickup"), ("Harbour", "dropoff")]


def test_regexes_named_like_entities_extract_and_intent_regexes_do_not(extractor: EntityExtractor) -> None:
    order = _one(extractor.extract(SENTENCES[2]), "order_id")
    assert (order["start"], order["end"], order["value"], order["extractor"]) == (15, 24, "BK-777123", REGEX)
    assert not [e for e in extractor.extract("hey there") if e["entity"] == "greet"]
    assert any("'greet'" in n for n in extractor.notices)


def test_lookup_tables_match_whole_words_in_any_case(extractor: EntityExtractor) -> None:
    brands = [e for e in extractor.extract(SENTENCES[3]) if e["entity"] == "bike_brand"]
    assert [(b["value"], b["start"], b["extractor"]) for b in brands] == [
        ("riese & müller", 17, LOOKUP), ("Brompton", 37, LOOKUP)]
    assert not [e for e in extractor.extract("two Bromptons") if e["entity"] == "bike_brand"]


def test_the_email_dimension_replaces_duckling(extractor: EntityExtractor) -> None:
    email = _one(extractor.extract(SENTENCES[4]), "email")
    assert (email["start"], email["end"], email["value"]) == (14, 34, "jane.doe@example.com")
    assert email["extractor"] == "BuiltinEntityExtractor" and email["confidence_entity"] == 1.0


def test_training_again_gives_the_same_model(bike_data: Any, trained: Path, extractor: EntityExtractor,
                                             tmp_path: Path) -> None:
    again = EntityExtractor.train(bike_data, default_encoder_path(), tmp_path, dimensions=["email"], seed=13)
    first, second = torch.load(trained / "entities.pt"), torch.load(tmp_path / "entities.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert [again.extract(s) for s in SENTENCES] == [extractor.extract(s) for s in SENTENCES]


def test_the_saved_folder_names_the_encoder_portably(trained: Path) -> None:
    meta = json.loads((trained / "entities.json").read_text(encoding="utf-8"))
    assert meta["encoder"] == "minilm"
    assert meta["dimensions"] == ["email"] and meta["synonyms"]["pedelec"] == "electric"


def test_data_without_annotations_keeps_its_patterns_and_needs_no_head(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("""- intent: ask_hours
  examples: |
    - are you open on sunday
- lookup: city
  examples: |
    - Bonn
- synonym: Bonn
  examples: |
    - Bundesstadt
- lookup: city
  examples: |
    - Bundesstadt
"""))
    out = tmp_path / "entities"
    EntityExtractor.train(read_rasa_nlu_data([path]), default_encoder_path(), out)
    assert not (out / "entities.pt").exists()
    loaded = EntityExtractor.load(out)
    assert loaded.extract("open in the bundesstadt?") == [
        {"entity": "city", "start": 12, "end": 23, "value": "Bonn", "confidence_entity": 1.0,
         "extractor": LOOKUP, "processors": ["EntitySynonymMapper"]}]


def test_builtin_dimensions_stand_in_for_duckling(tmp_path: Path) -> None:
    path = _write(tmp_path, _nlu("- intent: ask\n  examples: |\n    - where is my bike\n"))
    found = EntityExtractor.train(read_rasa_nlu_data([path]), default_encoder_path(), tmp_path / "e",
                                  dimensions=["url", "phone-number", "number", "time"])
    text = "see https://bikes.example.org/help, call +49 30 1234567 about twenty-five bikes"
    got = [(e["entity"], text[e["start"]:e["end"]], e["value"]) for e in found.extract(text)]
    assert got == [("url", "https://bikes.example.org/help", "https://bikes.example.org/help"),
                   ("phone-number", "+49 30 1234567", "+49301234567"),
                   ("number", "twenty-five", 25)]
    assert any("'time'" in n for n in found.notices)


def test_loading_where_nothing_was_trained_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        EntityExtractor.load(tmp_path)


def test_empty_text_has_no_entities(extractor: EntityExtractor) -> None:
    assert extractor.extract("") == [] and extractor.extract("  \n ") == []


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(), st.text(alphabet=st.characters(blacklist_categories=()))))
def test_extract_never_raises(extractor: EntityExtractor, text: str) -> None:
    for entity in extractor.extract(text):
        assert 0 <= entity["start"] < entity["end"] <= len(text)


def test_the_helpdesk_project_trains_and_extracts(tmp_path: Path) -> None:
    data = read_rasa_nlu_data([HELPDESK / "data" / "nlu.yml"])
    helpdesk = EntityExtractor.train(data, default_encoder_path(), tmp_path, dimensions=["email"])
    found = helpdesk.extract("open an urgent ticket, my email is a.b@corp.com")
    assert (_one(found, "priority")["value"], _one(found, "email")["value"]) == ("high", "a.b@corp.com")
