"""Datasets shared by the reference tests: generated once per session into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigex.partners.synthetic import GenerationSummary, generate_dataset

SMALL_PEOPLE = 6_000
SMALL_SEED = 11
RATES_PEOPLE = 30_000
RATES_SEED = 5


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    directory = tmp_path_factory.mktemp("small-dataset")
    return generate_dataset(directory, people=SMALL_PEOPLE, seed=SMALL_SEED)


@pytest.fixture(scope="session")
def rates_dataset(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    directory = tmp_path_factory.mktemp("rates-dataset")
    return generate_dataset(directory, people=RATES_PEOPLE, seed=RATES_SEED)


@pytest.fixture
def dataset_dir(small_dataset: GenerationSummary) -> Path:
    return small_dataset.directory
