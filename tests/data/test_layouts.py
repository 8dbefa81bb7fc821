from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from recsys_core.data import schema as S
from recsys_core.data.loaders import PARSE_ERROR, ROW, DataError, detect_layout, load_dataset

COLUMNS_INTER = [*S.INTERACTIONS_SCHEMA, ROW, PARSE_ERROR]
COLUMNS_ITEMS = [*S.ITEMS_SCHEMA, ROW, PARSE_ERROR]


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def epoch_seconds(frame: pl.DataFrame) -> list[int]:
    return frame[S.TS].dt.epoch("s").to_list()


# --- MovieLens ml-100k ---------------------------------------------------------------

ML100K_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|Café Society (1995)|01-Jan-1995||http://y|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
    "3|Bad Flags (1996)|01-Jan-1996||http://z|0|0|0|0|0|0|0|0|x|0|0|0|0|0|0|0|0|0|0\n"
)


@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    write(tmp_path / "u.data", "196\t1\t3\t881250949\n186\t2\t3\t891717742\n22\t1\t1\t878887116\n")
    write(tmp_path / "u.item", ML100K_ITEM, "latin-1")
    write(tmp_path / "u.user", "196|49|M|writer|55105\n186|39|F|executive|00000\n")
    return tmp_path


def test_ml100k(ml100k: Path) -> None:
    assert detect_layout(ml100k).name == "movielens-100k"
    data = load_dataset(ml100k)
    inter, items = data.interactions, data.items
    assert inter.columns == COLUMNS_INTER and items.columns == COLUMNS_ITEMS
    assert inter[S.USER_ID].to_list() == ["196", "186", "22"]
    assert inter[S.RATING].to_list() == [3.0, 3.0, 1.0]
    assert epoch_seconds(inter) == [881250949, 891717742, 878887116]
    assert items[S.TITLE].to_list()[:2] == ["Toy Story (1995)", "Café Society (1995)"]
    assert items[S.CATEGORIES].to_list()[:2] == [["Animation", "Children's", "Comedy"],
                                                 ["Drama"]]
    assert items[PARSE_ERROR].to_list() == [None, None,
                                            "categories: genre flags must be 0 or 1"]
    assert data.users is not None
    assert data.users.columns[:5] == [S.USER_ID, "age", "gender", "occupation", "zip_code"]
    assert data.users["zip_code"].to_list() == ["55105", "00000"]


def test_ml100k_genre_file(ml100k: Path) -> None:
    names = ["none", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
             "P", "Q", "R"]
    write(ml100k / "u.genre", "".join(f"{n}|{i}\n" for i, n in enumerate(names)) + "\n")
    items = load_dataset(ml100k).items
    assert items[S.CATEGORIES].to_list()[:2] == [["C", "D", "E"], ["H"]]


# --- MovieLens ml-1m ------------------------------------------------------------------

def test_ml1m(tmp_path: Path) -> None:
    write(tmp_path / "ratings.dat", "1::1193::5::978300760\r\n1::661::3::978302109\r\n")
    write(tmp_path / "movies.dat",
          '1193::One Flew Over the Cuckoo\'s Nest (1975)::Drama\n'
          '661::"Great" Performances: Cats (1998)::Children\'s|Musical\n'
          "3::Pokémon (1999)::(no genres listed)\n", "latin-1")
    write(tmp_path / "users.dat", "1::F::1::10::48067\n")
    assert detect_layout(tmp_path).name == "movielens-1m"
    data = load_dataset(tmp_path)
    assert data.interactions[S.ITEM_ID].to_list() == ["1193", "661"]
    assert epoch_seconds(data.interactions) == [978300760, 978302109]
    assert data.interactions[PARSE_ERROR].null_count() == 2
    items = data.items
    assert items[S.TITLE].to_list() == ["One Flew Over the Cuckoo's Nest (1975)",
                                        '"Great" Performances: Cats (1998)', "Pokémon (1999)"]
    assert items[S.CATEGORIES].to_list() == [["Drama"], ["Children's", "Musical"], []]
    assert data.users is not None and data.users.row(0) == ("1", "F", "1", "10", "48067", 1,
                                                            None)


# --- RecBole atomic files -------------------------------------------------------------

def test_recbole(tmp_path: Path) -> None:
    write(tmp_path / "tiny.inter",
          "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          "1\t10\t4.0\t881250949.0\n2\t11\t2.5\t881250950\n2\t10\tbad\t881250951\n")
    write(tmp_path / "tiny.item",
          "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
          "10\tToy Story\t1995\tAnimation Comedy\n11\tHeat\t1995\tAction\n")
    write(tmp_path / "tiny.user", "user_id:token\tage:token\n1\t24\n2\t53\n")
    assert detect_layout(tmp_path).name == "recbole"
    data = load_dataset(tmp_path)
    assert data.name == "tiny"
    inter = data.interactions
    assert inter[S.RATING].to_list() == [4.0, 2.5, None]
    assert epoch_seconds(inter) == [881250949, 881250950, 881250951]
    assert inter[PARSE_ERROR].to_list()[2] == "rating: cannot parse 'bad' as number"
    assert data.items[S.TITLE].to_list() == ["Toy Story", "Heat"]
    assert data.items[S.CATEGORIES].to_list() == [["Animation", "Comedy"], ["Action"]]
    assert data.users is not None and data.users["age"].to_list() == ["24", "53"]


def test_recbole_without_timestamps_and_untyped_header(tmp_path: Path) -> None:
    write(tmp_path / "x.inter", "user_id:token\titem_id:token\n1\t10\n1\t11\n")
    write(tmp_path / "x.item", "item_id:token\ttitle:token_seq\tdescription:token_seq\n"
                               "10\tA\tabout a\n11\tB\t\n")
    data = load_dataset(tmp_path)
    assert data.interactions[S.TS].is_sorted()
    assert data.items[S.TEXT].to_list() == ["about a", None]
    write(tmp_path / "x.item", "item_id\ttitle:token_seq\n10\tA\n")
    with pytest.raises(DataError, match=r"x\.item: header field 'item_id' is not name:type"):
        load_dataset(tmp_path)


def recbole_benchmark(directory: Path) -> Path:
    """RecBole benchmark files: x.train/valid/test.inter (no timestamps) + x.item."""
    header = "user_id:token\titem_id:token\n"
    write(directory / "x.train.inter", header + "1\t10\n1\t11\n2\t10\n")
    write(directory / "x.valid.inter", header + "1\t12\n")
    write(directory / "x.test.inter", header + "1\t13\n3\t10\n")
    write(directory / "x.item", "item_id:token\ttitle:token_seq\n"
          + "".join(f"{i}\tItem {i}\n" for i in range(10, 14)))
    return directory


def test_recbole_benchmark_files_carry_their_split(tmp_path: Path) -> None:
    assert detect_layout(recbole_benchmark(tmp_path)).name == "recbole"
    data = load_dataset(tmp_path)
    inter = data.interactions
    assert data.name == "x"
    assert inter.select(S.USER_ID, S.ITEM_ID, S.SPLIT).rows() == [
        ("1", "10", "train"), ("1", "11", "train"), ("2", "10", "train"),
        ("1", "12", "valid"), ("1", "13", "test"), ("3", "10", "test")]
    assert inter[ROW].to_list() == [1, 2, 3, 1, 1, 2]  # the record within its own file
    assert epoch_seconds(inter) == [1, 2, 3, 4, 5, 6]  # file order goes on across the files
    assert inter[PARSE_ERROR].null_count() == inter.height


def test_recbole_benchmark_files_win_over_the_whole_file_and_valid_is_optional(
        tmp_path: Path) -> None:
    recbole_benchmark(tmp_path)
    (tmp_path / "x.valid.inter").unlink()
    write(tmp_path / "x.inter", "user_id:token\titem_id:token\n9\t10\n")
    inter = load_dataset(tmp_path).interactions
    assert inter[S.SPLIT].to_list() == ["train"] * 3 + ["test"] * 2
    assert "9" not in inter[S.USER_ID].to_list()
    (tmp_path / "x.test.inter").unlink()  # train alone is no split: the whole file is read
    inter = load_dataset(tmp_path).interactions
    assert inter[S.USER_ID].to_list() == ["9"] and inter[S.SPLIT].to_list() == [None]


# --- Amazon UniSRec sequences ---------------------------------------------------------

INTER_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


@pytest.fixture
def unisrec(tmp_path: Path) -> Path:
    # user 0: a b c d e f (train rows longest first); user 1: c d e f (no train row).
    write(tmp_path / "Toy.train.inter", INTER_HEADER
          + "0\t0 1 2\t3\n0\t0 1\t2\n0\t0\t1\n")
    write(tmp_path / "Toy.valid.inter", INTER_HEADER + "0\t0 1 2 3\t4\n1\t2 3\t4\n")
    write(tmp_path / "Toy.test.inter", INTER_HEADER + "0\t0 1 2 3 4\t5\n1\t2 3 4\t5\n")
    write(tmp_path / "Toy.item2index", "".join(f"A{i}\t{i}\n" for i in range(6)))
    write(tmp_path / "Toy.user2index", "alice\t0\nbob\t1\n")
    write(tmp_path / "Toy.text", "item_id:token\ttext:token_seq\n"
          + "".join(f"A{i}\tItem {i}. Cat. Brand. \n" for i in range(6)))
    return tmp_path


def test_unisrec_rebuilds_sequences(unisrec: Path) -> None:
    assert detect_layout(unisrec).name == "amazon-unisrec"
    data = load_dataset(unisrec)
    inter = data.interactions
    assert inter[S.USER_ID].to_list() == ["alice"] * 6 + ["bob"] * 4
    assert inter[S.ITEM_ID].to_list() == [f"A{i}" for i in range(6)] + ["A2", "A3", "A4", "A5"]
    assert epoch_seconds(inter) == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4]
    # the published leave-one-out split: valid and test targets, everything before is train
    assert inter[S.SPLIT].to_list() == (["train"] * 4 + ["valid", "test"]
                                        + ["train"] * 2 + ["valid", "test"])
    assert inter[PARSE_ERROR].null_count() == inter.height
    assert inter[S.RATING].null_count() == inter.height
    assert data.items[S.TITLE][0] == "Item 0. Cat. Brand."


def test_unisrec_marks_unknown_indices_and_inconsistent_users(unisrec: Path) -> None:
    write(unisrec / "Toy.test.inter", INTER_HEADER + "0\t0 1 2 3 4\t9\n1\t2 9 4\t5\n")
    inter = load_dataset(unisrec).interactions
    errors = inter[PARSE_ERROR].to_list()
    assert errors[5] == "item_id: unknown item index '9'"
    assert errors[:5] == [None] * 5
    assert set(errors[6:]) == {"item_id: rebuilt sequence disagrees with the user's last "
                               "history"}


def test_amazon_scientific(shared_data: Path) -> None:
    data = load_dataset(shared_data / "amazon-scientific")
    inter = data.interactions
    assert (inter.height, inter[S.USER_ID].n_unique(), inter[S.ITEM_ID].n_unique()) == (
        59_427, 8_442, 4_385)
    assert inter[PARSE_ERROR].null_count() == inter.height
    lengths = inter.group_by(S.USER_ID).len()["len"]
    assert (lengths.min(), lengths.max()) == (5, 80)
    first = inter.filter(pl.col(S.USER_ID) == "ABW8NXS7SV55K")
    assert first[S.ITEM_ID].to_list()[:2] == ["B00TNNWMXI", "B00IBZE2EQ"]
    assert epoch_seconds(first) == list(range(1, first.height + 1))
    assert first[S.SPLIT].to_list() == ["train"] * (first.height - 2) + ["valid", "test"]
    assert dict(inter[S.SPLIT].value_counts().iter_rows()) == {
        "train": 59_427 - 2 * 8_442, "valid": 8_442, "test": 8_442}
    assert data.items.height == 4_385 and data.items[S.TITLE].null_count() == 0
    assert data.items[S.TITLE][0].startswith("PORTER-CABLE 740000801")


# --- Last.fm HetRec -------------------------------------------------------------------

def lastfm_files(directory: Path, header: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    plays = "2\t51\t13883\r\n2\t52\t11690\r\n61\t65  \t170\r\n61\t51\t    316\r\n"
    write(directory / "user_artists.dat", ("userID\tartistID\tweight\r\n" if header else "")
          + plays)
    write(directory / "artists.dat", "id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://a\t\n"
          '52\tMorcheeba\thttp://b\thttp://p\n65\t"Weird" Al\thttp://c\t\n')
    return directory


@pytest.mark.parametrize("header", [False, True])
def test_lastfm(tmp_path: Path, header: bool) -> None:
    data = load_dataset(lastfm_files(tmp_path, header))
    inter = data.interactions
    assert detect_layout(tmp_path).name == "lastfm-hetrec"
    assert inter[S.ITEM_ID].to_list() == ["51", "52", "65", "51"]
    assert inter[S.WEIGHT].to_list() == [13883.0, 11690.0, 170.0, 316.0]
    assert inter[S.EVENT].to_list() == ["play"] * 4
    assert inter[S.TS].null_count() == 4  # no time, no order: not file order
    assert inter[PARSE_ERROR].null_count() == 4
    assert data.items[S.TITLE].to_list() == ["Duran Duran", "Morcheeba", '"Weird" Al']
    assert data.items[S.TEXT].null_count() == 3


def test_lastfm_descriptions(tmp_path: Path) -> None:
    lastfm_files(tmp_path, header=False)
    extra = tmp_path / "colakg_llm_artist_text"
    extra.mkdir()
    write(extra / "item_map.txt", "51 0\n65 1\n99 2\n")
    write(extra / "llm_response_item.json", json.dumps({"0": "An English band.", "1": "Parody."}))
    items = load_dataset(tmp_path).items
    assert items[S.TEXT].to_list() == ["An English band.", None, "Parody."]
    write(extra / "llm_response_item.json", "[1, 2]")
    with pytest.raises(DataError, match="expected an object"):
        load_dataset(tmp_path)


def test_lastfm_2k(shared_data: Path) -> None:
    data = load_dataset(shared_data / "lastfm-2k")
    inter = data.interactions
    assert (inter.height, inter[S.USER_ID].n_unique(), inter[S.ITEM_ID].n_unique()) == (
        92_834, 1_892, 17_632)
    assert inter[PARSE_ERROR].null_count() == inter.height
    padded = inter.filter(pl.col(ROW) == 2865).row(0, named=True)  # '65  ' in the source
    assert (padded[S.USER_ID], padded[S.ITEM_ID], padded[S.WEIGHT]) == ("61", "65", 170.0)
    items = data.items
    assert items.height == 17_632
    assert items.height - items[S.TEXT].null_count() == 2_813
    duran = items.filter(pl.col(S.ITEM_ID) == "51").row(0, named=True)
    assert duran[S.TITLE] == "Duran Duran" and "Duran Duran" in duran[S.TEXT]


# --- detection ------------------------------------------------------------------------

def test_unknown_layout_lists_every_supported_layout(tmp_path: Path) -> None:
    write(tmp_path / "data.inter", "user_id:token\titem_id:token\n1\t2\n")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    message = str(info.value)
    assert "\n" not in message and "found: data.inter;" in message
    for name in ("ml-100k", "ml-1m", "ml-latest", "RecBole", "UniSRec", "Last.fm", "generic"):
        assert name in message


def test_timestamps_are_utc(tmp_path: Path) -> None:
    write(tmp_path / "u.data", "1\t1\t3\t0\n")
    write(tmp_path / "u.item", "1|A|||" + "|0" * 19 + "\n")
    assert load_dataset(tmp_path).interactions[S.TS][0] == datetime(1970, 1, 1, tzinfo=UTC)
