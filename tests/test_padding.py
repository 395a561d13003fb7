import torch

from prismrl.padding import attention_inputs, attention_mask, padded


def test_rows_are_filled_on_the_right_or_the_left():
    assert padded([[1, 2, 3], [4]], 0).tolist() == [[1, 2, 3], [4, 0, 0]]
    assert padded([[1, 2, 3], [4]], 9, left=True).tolist() == [[1, 2, 3], [9, 9, 4]]
    assert padded([[True], []], False, dtype=torch.bool).tolist() == [[True], [False]]
    assert attention_mask([3, 1]).tolist() == [[1, 1, 1], [1, 0, 0]]
    assert attention_mask([3, 1], left=True).tolist() == [[1, 1, 1], [0, 0, 1]]
    assert padded([[1]], 0).dtype == torch.long


def test_right_padding_drops_the_mask_and_any_other_padding_keeps_it():
    assert attention_inputs(attention_mask([3, 1])) == {}
    assert attention_inputs(torch.ones(2, 4, dtype=torch.long)) == {}
    left = attention_mask([3, 1], left=True)
    assert attention_inputs(left)["attention_mask"] is left
    holed = torch.tensor([[1, 0, 1]])
    assert attention_inputs(holed)["attention_mask"] is holed
