from fixtures import make_csv_dataset, write_corrupt

from dasl.data import check_dataset


def test_healthy_subset_is_ok_with_allow_subset(cub_root):
    report = check_dataset("cub200", cub_root, allow_subset=True)
    assert report.ok, str(report)
    assert report.splits["train"].images == 9 and report.splits["train"].classes == 3
    assert report.splits["train"].expected_images == 5864
    assert report.splits["val*"].classes == 1  # ceil(0.1 * 3)
    text = str(report)
    assert "OK" in text and "5,864 / 100" in text and "subset" in text


def test_count_mismatch_is_a_problem(cars_root):
    report = check_dataset("cars196", cars_root)
    assert not report.ok
    assert any("expected 8,054 / 98" in p for p in report.problems)
    assert any("8,144/8,041" in n for n in report.notes)


def test_missing_layout_reported_not_raised(tmp_path):
    report = check_dataset("sop", tmp_path)
    assert not report.ok and "Ebay_train.txt" in report.problems[0]
    assert "PROBLEMS" in str(report)


def test_missing_and_unreadable_images(sop_root):
    base = sop_root / "Stanford_Online_Products"
    paths = sorted(base.glob("*_final/*.JPG"))
    paths[0].unlink()
    write_corrupt(paths[1])
    report = check_dataset("sop", sop_root, allow_subset=True)
    assert any(
        "1 of 12 image files are missing" in p and str(paths[0]) in p for p in report.problems
    )
    assert any("1 image files are unreadable" in p and str(paths[1]) in p for p in report.problems)
    quick = check_dataset("sop", sop_root, allow_subset=True, scan=False)
    assert not any("image files are unreadable" in p for p in quick.problems)


def test_class_overlap_reported(tmp_path):
    path = make_csv_dataset(tmp_path, split=("train", "test", "test", "train"))
    lines = path.read_text().splitlines()
    # move one image of class 10 (train) to test: class 10 is now on both sides
    lines[1] = lines[1].replace(",train", ",test")
    path.write_text("\n".join(lines) + "\n")
    report = check_dataset("csv", path)
    assert any("1 classes are in both train and test" in p for p in report.problems)


def test_inshop_and_array_datasets(inshop_root):
    report = check_dataset("inshop", inshop_root, allow_subset=True)
    assert report.ok and set(report.splits) >= {"train", "query", "gallery"}
    digits = check_dataset("digits", None)
    assert digits.ok and digits.splits["test"].classes == 5
