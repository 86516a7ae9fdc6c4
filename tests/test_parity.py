"""The cornac parity harness's own logic (the harness itself is a benchmark, run outside the test suite)."""

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from xrec_core.parity import _bow_docs, parity_table


def test_pseudo_documents_reproduce_the_bag_of_words():
    vocabulary = ["gene", "protein", "cell", "network"]
    bow = sp.csr_matrix(np.array([[2, 0, 1, 0], [0, 3, 0, 1], [0, 0, 0, 0]]))
    docs = _bow_docs(bow, vocabulary)
    assert docs[2] == ""
    counted = CountVectorizer(vocabulary=vocabulary).fit_transform(docs)
    np.testing.assert_array_equal(counted.toarray(), bow.toarray())


def test_parity_table_reads_the_record_table():
    rows = [{"model": "BPR", "metric": "Recall@50", "ours": 0.12, "cornac": 0.11}]
    table = parity_table({"tables": {"parity": rows}})
    pd.testing.assert_frame_equal(table, pd.DataFrame(rows))
    assert parity_table({}).empty
