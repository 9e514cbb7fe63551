// The masks a Transformer layer takes, as PyTorch's layers take them, and
// their checks.
//
// Every attention of a Transformer layer takes two masks (1 = blocked, as
// PyTorch's boolean masks): an attention mask for the scores of one head,
// which keys each query may read (the causal mask, or a memory mask), and a
// key padding mask, which keys of each sequence are padding. The layers check
// both at their entry, so a wrong shape is an error naming the layer the user
// called and the argument, not the attention deep inside it.
#pragma once

#include <string>

#include "core/tensor.hpp"

namespace ag::nn {

// Rows past..past+n-1 of causal_mask(past + n): the lookahead mask [F4.8] of n
// new positions that follow past cached ones, (n, past + n). Each new position
// reads every cached position and the new ones up to itself.
Tensor causal_mask_rows(int64_t past, int64_t n);

// Checks an attention mask and a key padding mask for `tq` queries over `tk`
// keys in a batch of `batch` sequences with `heads` heads:
//   attn_mask          (Tq,Tk), (B,Tq,Tk) or (B,h,Tq,Tk), each size 1 allowed to broadcast
//   key_padding_mask   (B,Tk) or (B,1,Tk)
// Either may be undefined. The message names `layer`, the argument, its shape
// and the shapes it may have, with `query_letter`/`key_letter` for Tq and Tk
// ("T" and "S" for a decoder's memory mask).
void check_attention_masks(const std::string& layer, const char* mask_name, const Tensor& attn_mask,
                           const char* padding_name, const Tensor& key_padding_mask, int64_t batch,
                           int64_t heads, int64_t tq, int64_t tk, const char* query_letter,
                           const char* key_letter);

}  // namespace ag::nn
