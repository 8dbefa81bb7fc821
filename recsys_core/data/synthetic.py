"""Seeded synthetic data: items with realistic text, users whose tastes the text reflects.

Every item belongs to one topic of one domain (products, movies, music, news); its title and
description are drawn from that topic's words, so a text encoder can recover the topic. Each
user has a sparse Dirichlet taste over topics; interactions pick a topic by taste, then an
item inside the topic by a Zipf popularity, with some global-popularity noise and repeats.
Everything is vectorised, so millions of interactions take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys_core.data import schema as S
from recsys_core.data.dataset import Dataset

# domain -> topic -> (title nouns, descriptive words)
TOPICS: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    "products": {
        "audio": (["Headphones", "Earbuds", "Speaker", "Soundbar", "Turntable", "Amplifier"],
                  ["wireless", "noise-cancelling", "bass", "bluetooth", "stereo", "hi-fi"]),
        "kitchen": (["Blender", "Chef Knife", "Skillet", "Espresso Maker", "Cutting Board",
                     "Stock Pot"],
                    ["stainless", "non-stick", "cooking", "recipes", "dishwasher-safe",
                     "cast iron"]),
        "outdoor": (["Tent", "Backpack", "Sleeping Bag", "Trekking Poles", "Headlamp",
                     "Water Filter"],
                    ["camping", "hiking", "waterproof", "lightweight", "trail", "ultralight"]),
        "lab": (["Pipette", "Microscope", "Beaker Set", "Digital Scale", "Centrifuge",
                 "Multimeter"],
                ["laboratory", "precision", "calibrated", "scientific", "measurement",
                 "glassware"]),
        "fitness": (["Dumbbells", "Yoga Mat", "Kettlebell", "Resistance Bands", "Jump Rope",
                     "Foam Roller"], ["workout", "strength", "training", "gym", "cardio",
                                      "stretching"]),
        "toys": (["Building Blocks", "Puzzle", "Plush Bear", "Model Train", "Board Game",
                  "Kite"], ["kids", "educational", "colorful", "family", "creative", "playtime"]),
    },
    "movies": {
        "scifi": (["Starfall", "The Last Colony", "Quantum Drift", "Orbit", "Android Dawn",
                   "Nebula"], ["spaceship", "alien", "future", "galaxy", "robot", "time travel"]),
        "romance": (["Summer in Paris", "Love Letters", "The Wedding", "Second Chances",
                     "Moonlight Kiss", "Heartstrings"], ["love", "romantic", "couple", "wedding",
                                                         "heartfelt", "passion"]),
        "horror": (["The Haunting", "Night Terror", "Cursed", "The Cellar", "Bloodmoon",
                    "Whispers"],
                   ["ghost", "haunted", "terrifying", "demon", "killer", "nightmare"]),
        "comedy": (["Road Trip", "The Roommates", "Office Party", "Big Mess", "Dad Jokes",
                    "Wild Weekend"], ["hilarious", "funny", "slapstick", "laughs", "goofy",
                                      "comedy"]),
        "documentary": (["Planet Oceans", "The Climb", "Inside the Mind", "Wild Africa",
                         "Empire of Ice", "Food Inc"], ["true story", "nature", "history",
                                                        "investigation", "wildlife", "science"]),
        "animation": (["Little Dragon", "Toy Kingdom", "The Brave Fox", "Magic Forest",
                       "Robot Pals", "Ocean Tales"], ["animated", "family", "adventure",
                                                      "cartoon", "magical", "friendship"]),
    },
    "music": {
        "metal": (["Iron Storm", "Black Abyss", "Thunder Reign", "Steel Fury", "Doom Gate",
                   "Fire Legion"], ["heavy", "distorted guitars", "metal", "headbanging", "riffs",
                                    "screaming"]),
        "jazz": (["Blue Note Nights", "Smooth Sax", "Midnight Trio", "Swing Street",
                  "Bebop Cafe", "Velvet Piano"], ["jazz", "saxophone", "improvisation", "swing",
                                                  "trumpet", "bebop"]),
        "electronic": (["Neon Pulse", "Synthwave City", "Bass Drop", "Techno Tunnel",
                        "Digital Love", "Rave Machine"], ["synthesizer", "techno", "house",
                                                          "dance", "electronic", "beats"]),
        "classical": (["Symphony No. 5", "Piano Sonatas", "The Four Seasons", "Cello Suites",
                       "Requiem", "String Quartets"], ["orchestra", "classical", "violin",
                                                       "baroque", "concerto", "symphony"]),
        "hiphop": (["Street Dreams", "Block Party", "Rhymes and Reasons", "Concrete Jungle",
                    "Mic Check", "Gold Chains"], ["rap", "hip hop", "beats", "lyrics", "flow",
                                                  "verses"]),
        "folk": (["Mountain Songs", "Old Barn", "River Ballads", "Dusty Roads", "Campfire Tales",
                  "Harvest Moon"], ["acoustic", "folk", "banjo", "storytelling", "country",
                                    "fiddle"]),
    },
    "news": {
        "politics": (["Election Results", "Senate Vote", "Policy Debate", "Campaign Trail",
                      "Summit Talks", "New Bill"], ["government", "election", "parliament",
                                                    "minister", "vote", "policy"]),
        "sports": (["Championship Final", "Transfer News", "Record Broken", "Derby Day",
                    "Injury Update", "Season Preview"], ["football", "league", "coach",
                                                         "tournament", "goal", "athletes"]),
        "tech": (["New Smartphone", "AI Breakthrough", "Chip Shortage", "Startup Funding",
                  "Data Breach", "Cloud Outage"], ["software", "artificial intelligence",
                                                   "startup", "semiconductor", "cybersecurity",
                                                   "app"]),
        "finance": (["Market Rally", "Rate Hike", "Earnings Report", "Crypto Crash",
                     "Bond Yields", "Merger Deal"], ["stocks", "inflation", "investors", "bank",
                                                     "economy", "interest rates"]),
        "health": (["Vaccine Trial", "Sleep Study", "Diet Trends", "Hospital Strain",
                    "Mental Health", "New Therapy"], ["doctors", "patients", "medicine",
                                                      "clinical", "wellness", "disease"]),
        "travel": (["Hidden Beaches", "City Breaks", "Budget Flights", "Island Hopping",
                    "Rail Journeys", "Mountain Resorts"], ["tourism", "destinations", "hotel",
                                                           "vacation", "passport", "itinerary"]),
    },
}
EVENTS = {"products": "purchase", "movies": "view", "music": "play", "news": "click"}
_NOUN = {"products": "product", "movies": "film", "music": "album", "news": "story"}
_ADJECTIVES = ["Classic", "Ultimate", "Essential", "Deluxe", "Modern", "Vintage", "Pro", "Epic",
               "Complete", "Original", "New", "Premium"]


@dataclass(frozen=True)
class SyntheticConfig:
    """Sizes and behaviour of the generated data.

    Args:
        n_users: number of users.
        n_items: number of items.
        n_interactions: approximate number of interactions (exact before deduplication).
        seed: random seed; the same seed gives the same data.
        taste_concentration: Dirichlet concentration of user tastes (small = focused users).
        noise: share of interactions drawn from global popularity instead of taste.
        repeat: share of interactions that repeat the user's previous item.
        zipf: popularity skew inside a topic.
    """

    n_users: int = 2000
    n_items: int = 1500
    n_interactions: int = 60_000
    seed: int = 42
    taste_concentration: float = 0.08
    noise: float = 0.1
    repeat: float = 0.05
    zipf: float = 0.8


def _topic_table() -> tuple[list[str], list[str], list[tuple[list[str], list[str]]]]:
    domains, topics, words = [], [], []
    for domain, table in TOPICS.items():
        for topic, pair in table.items():
            domains.append(domain)
            topics.append(topic)
            words.append(pair)
    return domains, topics, words


def _items(config: SyntheticConfig, rng: np.random.Generator
           ) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    domains, topics, words = _topic_table()
    n_topics = len(topics)
    item_topic = rng.integers(0, n_topics, config.n_items)
    nouns_pick = rng.integers(0, 6, (config.n_items, 2))
    words_pick = rng.permuted(np.tile(np.arange(6), (config.n_items, 1)), axis=1)
    adjective = rng.integers(0, len(_ADJECTIVES), config.n_items)
    ids, titles, texts, categories = [], [], [], []
    for i in range(config.n_items):
        t = item_topic[i]
        nouns, descriptive = words[t]
        n, w = nouns_pick[i], words_pick[i]
        ids.append(f"i{i}")
        titles.append(f"{_ADJECTIVES[adjective[i]]} {nouns[n[0]]} {i % 97 + 1}")
        texts.append(f"A {descriptive[w[0]]} and {descriptive[w[1]]} {_NOUN[domains[t]]} about "
                     f"{descriptive[w[2]]}, for fans of {topics[t]} and {nouns[n[1]].lower()}.")
        categories.append([domains[t], topics[t]])
    items = pl.DataFrame({S.ITEM_ID: ids, S.TITLE: titles, S.TEXT: texts,
                          S.CATEGORIES: categories}, schema=S.ITEMS_SCHEMA)
    # Zipf popularity by a random rank inside each topic.
    order = np.lexsort((rng.random(config.n_items), item_topic))
    starts = np.searchsorted(item_topic[order], item_topic[order])
    rank = np.empty(config.n_items, dtype=np.float64)
    rank[order] = np.arange(config.n_items) - starts + 1
    popularity = 1.0 / rank ** config.zipf
    return items, item_topic, popularity


def _inverse_cdf_sampler(groups: np.ndarray, weights: np.ndarray, n_groups: int):
    """Sample members of a group by weight: one searchsorted over stacked per-group CDFs."""
    order = np.lexsort((np.arange(len(groups)), groups))
    g, w = groups[order], weights[order]
    totals = np.bincount(g, weights=w, minlength=n_groups)
    cdf_within = (np.cumsum(w) - np.repeat(np.cumsum(totals) - totals, np.bincount(
        g, minlength=n_groups))) / totals[g]
    keys = g + np.minimum(cdf_within, 1.0 - 1e-12)

    def sample(group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pos = np.searchsorted(keys, group + rng.random(len(group)))
        return order[np.minimum(pos, len(order) - 1)]

    return sample


def generate(config: SyntheticConfig | None = None) -> Dataset:
    """Generate a synthetic dataset.

    Args:
        config: sizes and behaviour; defaults give ~60k interactions.
    """
    config = config or SyntheticConfig()
    rng = np.random.default_rng(config.seed)
    items, item_topic, popularity = _items(config, rng)
    n_topics = int(item_topic.max()) + 1 if config.n_items else 0
    present = np.bincount(item_topic, minlength=n_topics) > 0

    taste = rng.dirichlet(np.full(n_topics, config.taste_concentration), config.n_users)
    taste = taste * present
    taste /= taste.sum(axis=1, keepdims=True)
    # Heavy-tailed activity: every user gets at least 3 interactions.
    activity = rng.lognormal(0.0, 1.0, config.n_users)
    counts = np.maximum(3, np.round(activity / activity.sum() * config.n_interactions)).astype(
        np.int64)
    users = np.repeat(np.arange(config.n_users), counts)
    n = len(users)

    topic = np.empty(n, dtype=np.int64)
    cdf = np.cumsum(taste, axis=1)
    for offset in range(0, n, 1_000_000):  # bounded memory at any size
        u = users[offset:offset + 1_000_000]
        draw = rng.random(len(u))[:, None]
        topic[offset:offset + len(u)] = np.minimum((cdf[u] < draw).sum(axis=1), n_topics - 1)
    item = _inverse_cdf_sampler(item_topic, popularity, n_topics)(topic, rng)
    noisy = rng.random(n) < config.noise
    global_cdf = np.cumsum(popularity) / popularity.sum()
    item[noisy] = np.minimum(np.searchsorted(global_cdf, rng.random(noisy.sum())),
                             config.n_items - 1)

    start = rng.uniform(0, 365 * 86400, config.n_users)
    gaps = rng.exponential(3 * 3600, n)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    cum = np.cumsum(gaps)
    seconds = start[users] + cum - np.repeat(cum[first], counts)
    repeat = (rng.random(n) < config.repeat) & (np.r_[False, users[1:] == users[:-1]])
    prev = np.flatnonzero(repeat) - 1
    item[repeat] = item[prev]

    domains, _, _ = _topic_table()
    event = np.asarray([EVENTS[d] for d in domains], dtype=object)[item_topic[item]]
    epoch = np.datetime64("2024-01-01T00:00:00", "us")
    ts = epoch + (seconds * 1e6).astype("timedelta64[us]")
    interactions = pl.DataFrame({
        S.USER_ID: np.char.add("u", np.arange(config.n_users).astype(str))[users],
        S.ITEM_ID: np.char.add("i", np.arange(config.n_items).astype(str))[item],
        S.TS: ts,
        S.EVENT: event.astype(str),
    }).with_columns(pl.col(S.TS).dt.replace_time_zone("UTC"))
    return Dataset("synthetic", S.conform(interactions, S.INTERACTIONS_SCHEMA), items)
