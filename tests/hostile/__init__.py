"""The hostile-input corpus: inputs an attacker or a careless user hands the workbench, as generator functions
(files are built in each test's temporary folder, so a 600 MiB zip bomb costs ~100 KB of code, not of repository).

    data   archives (bombs, traversal, lying sizes, clashes), images in odd modes and decompression bombs, CSV/JSONL
           quoting, symlinked folders, huge captions, catastrophic regexes
    text   markdown/HTML that would fetch or link outside, spreadsheet formulas, YAML alias bombs
    train  pickles planted where the trainer resumes from

tests/test_hostile_corpus.py runs every sample through the workbench's real entry points; the per-issue tests
(test_data_hostile.py, test_prompts_yaml_safety.py, test_hostile_text.py, ...) use the same samples.
"""
