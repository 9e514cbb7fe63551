#!/usr/bin/python3
"""Writes the PyTorch fixtures that tests/test_pytorch_interop.cpp loads.

Only for regenerating them: the tests read the committed files and never run
Python. It needs PyTorch (Debian 12: apt-get install -y python3-torch, which is
1.13, CPU); the .safetensors files are written by hand (8-byte little-endian
header length, JSON header, raw little-endian data), so the safetensors
package is not needed. From the repository root:

    /usr/bin/python3 tests/data/pytorch/make_fixtures.py [case ...]

For every case NAME it builds the PyTorch module with a fixed seed, runs it in
eval mode on a fixed input and writes, next to this script,

    NAME.safetensors     the module's state_dict under attograd's names: what
                         nn::Module::load reads. For the layers whose names are
                         PyTorch's that is the state_dict as it is; for
                         MultiHeadAttention and the Transformer layers it is
                         the state_dict through to_attograd (docs/pytorch.md)
    NAME.io.safetensors  the inputs and PyTorch's outputs (F32; integer inputs
                         such as token ids and lengths stored as F32 too); for
                         the cases with gradients also grad_output, a random v,
                         and the gradients of sum(v * output): grad.INPUT for
                         the inputs named, grad.PARAMETER (attograd's names)
                         for every parameter

Where PyTorch has the module (nn.Linear, nn.LSTM, ...) it is used; for the
layers it lacks, a few-line class with the attograd layer's parameter names
(the seeds' own PyTorch classes where there is one).
"""

import json
import math
import os
import struct
import sys

import torch
from torch import nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------- .safetensors

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
TORCH_DTYPES = {v: k for k, v in DTYPES.items()}


def save_safetensors(path, tensors):
    """tensors: {name: torch.Tensor}, written in name order, data 8-byte aligned."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()  # x86: little-endian already
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=TORCH_DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]) if e["shape"] else t.reshape(())
    return out


# ---------------------------------------------------------------- name mappings
#
# PyTorch's nn.MultiheadAttention stores W_Q, W_K, W_V stacked in one
# in_proj_weight (3d, d) and in_proj_bias (3d); attograd keeps them as three
# Linear layers q_proj, k_proj, v_proj. out_proj has the same name on both sides.


def mha_to_attograd(sd, prefix=""):
    out = {}
    for name, t in sd.items():
        if not name.startswith(prefix):
            out[name] = t
            continue
        rest = name[len(prefix):]
        if rest in ("in_proj_weight", "in_proj_bias"):
            kind = "weight" if rest.endswith("weight") else "bias"
            for part, chunk in zip(("q_proj", "k_proj", "v_proj"), t.chunk(3, dim=0)):
                out[f"{prefix}{part}.{kind}"] = chunk.clone()
        else:
            out[name] = t
    return out


def mha_from_attograd(sd, prefix=""):
    out = {name: t for name, t in sd.items()
           if not any(name.startswith(f"{prefix}{p}_proj.") for p in "qkv")}
    for kind in ("weight", "bias"):
        parts = [f"{prefix}{p}_proj.{kind}" for p in "qkv"]
        if parts[0] in sd:
            out[f"{prefix}in_proj_{kind}"] = torch.cat([sd[p] for p in parts], 0)
    return out


# nn.TransformerEncoderLayer: self_attn as above; everything else (linear1,
# linear2, norm1, norm2) has the same name on both sides.
def encoder_layer_to_attograd(sd, prefix=""):
    return mha_to_attograd(sd, prefix + "self_attn.")


def encoder_layer_from_attograd(sd, prefix=""):
    return mha_from_attograd(sd, prefix + "self_attn.")


# nn.TransformerDecoderLayer: self_attn and multihead_attn as above; linear1,
# linear2, norm1..norm3 the same.
def decoder_layer_to_attograd(sd, prefix=""):
    return mha_to_attograd(mha_to_attograd(sd, prefix + "self_attn."), prefix + "multihead_attn.")


def decoder_layer_from_attograd(sd, prefix=""):
    return mha_from_attograd(mha_from_attograd(sd, prefix + "self_attn."),
                             prefix + "multihead_attn.")


# nn.Transformer: every layer of encoder.layers.N and decoder.layers.N mapped as
# above; encoder.norm and decoder.norm the same.
def transformer_mapping(encoder_layer, decoder_layer, encoders, decoders):
    def mapping(sd):
        for i in range(encoders):
            sd = encoder_layer(sd, f"encoder.layers.{i}.")
        for i in range(decoders):
            sd = decoder_layer(sd, f"decoder.layers.{i}.")
        return sd
    return mapping


def layers_mapping(to, count):
    def mapping(sd):
        for i in range(count):
            sd = to(sd, f"layers.{i}.")
        return sd
    return mapping


def identity(sd):
    return dict(sd)


# ---------------------------------------------------------------- the few-line classes
# for the attograd layers PyTorch does not have, with the same parameter names.


class PointAttention(nn.Module):  # seed 000's Attention class, as it is
    def __init__(self, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, x):
        e = self.linear(x)
        a = torch.softmax(e, dim=1)
        context = torch.sum(a * x, dim=1)
        return context, a


class SelfAttention(nn.Module):  # seed 003's SelfAttention class, as it is
    def __init__(self, d_model=512, dropout=0.1):
        super().__init__()
        self.d_model = d_model
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_model)
        attention = F.softmax(scores, dim=-1)
        out = torch.matmul(attention, v)
        out += x
        return self.out(out)


def run_rnn(rnn, x, lengths=None, state=None):
    """nn.RNN / nn.LSTM (batch_first) with padding: output zeros past each length."""
    if lengths is None:
        return rnn(x, state)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                               enforce_sorted=False)
    out, last = rnn(packed, state)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, last


def padding_mask(lengths, length):  # True (blocked) past each sequence's end
    return torch.arange(length)[None, :] >= torch.tensor(lengths)[:, None]


class SequenceAttention(nn.Module):  # seed 000 section 3.2.2: attention over RNN states
    # encoder "rnn", "lstm" or "conv" (states tanh(conv(x)), padded steps read as zeros)
    def __init__(self, input_size, hidden_size, encoder="rnn", kernel_size=3):
        super().__init__()
        self.encoder = encoder
        if encoder == "conv":
            self.conv = nn.Conv1d(input_size, hidden_size, kernel_size,
                                  padding=(kernel_size - 1) // 2)
        else:
            recurrent = nn.RNN if encoder == "rnn" else nn.LSTM
            setattr(self, encoder, recurrent(input_size, hidden_size, batch_first=True))
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, x, lengths):
        mask = padding_mask(lengths, x.shape[1])
        if self.encoder == "conv":
            steps = x.masked_fill(mask.unsqueeze(2), 0).transpose(1, 2)
            h = torch.tanh(self.conv(steps)).transpose(1, 2)
        else:
            h, _ = run_rnn(getattr(self, self.encoder), x, lengths)
        a = torch.softmax(self.linear(h).squeeze(2).masked_fill(mask, -math.inf), dim=1)
        context = torch.bmm(a.unsqueeze(1), h).squeeze(1)
        output = (h + context.unsqueeze(1)).masked_fill(mask.unsqueeze(2), 0)
        return output, context, a


class DotScore(nn.Module):
    def score(self, query, keys):
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)

    def project_keys(self, keys):
        return keys

    def forward(self, query, keys, mask=None):
        e = self.score(query, self.project_keys(keys))
        if mask is not None:
            e = e.masked_fill(mask, -math.inf)
        a = torch.softmax(e, dim=1)
        return torch.bmm(a.unsqueeze(1), keys).squeeze(1), a


class GeneralScore(DotScore):  # Luong's general: (W_q s)^T (W_k h_j)
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.query_layer = nn.Linear(query_size, attention_size, bias=False)
        self.key_layer = nn.Linear(key_size, attention_size, bias=False)

    def project_keys(self, keys):
        return self.key_layer(keys)

    def score(self, query, keys):
        return torch.bmm(keys, self.query_layer(query).unsqueeze(2)).squeeze(2)


class AdditiveScore(GeneralScore):  # Bahdanau's: v^T tanh(W_q s + W_k h_j), seed 004's names
    def __init__(self, query_size, key_size, attention_size):
        super().__init__(query_size, key_size, attention_size)
        self.weight_layer = nn.Linear(attention_size, 1, bias=False)

    def score(self, query, keys):
        hidden = torch.tanh(self.query_layer(query).unsqueeze(1) + keys)
        return self.weight_layer(hidden).squeeze(2)


class Seq2Seq(nn.Module):  # layers/recurrent/seq2seq.hpp: encoder, input-feeding decoder, attention
    def __init__(self, source_vocab, target_vocab, E, H, A, cell="lstm", score="additive",
                 num_layers=1, bidirectional=False, dropout=0.0):
        super().__init__()
        self.H, self.cell, self.L = H, cell, num_layers
        self.dirs = 2 if bidirectional else 1
        K = self.dirs * H  # keys [->h_j; <-h_j] and contexts
        recurrent = nn.LSTM if cell == "lstm" else nn.RNN
        self.encoder_embedding = nn.Embedding(source_vocab, E)
        self.encoder = recurrent(E, H, num_layers=num_layers, batch_first=True, dropout=dropout,
                                 bidirectional=bidirectional)
        self.decoder_embedding = nn.Embedding(target_vocab, E)
        if num_layers == 1:
            self.decoder = (nn.LSTMCell if cell == "lstm" else nn.RNNCell)(E + K, H)
        else:  # a stacked decoder: nn.LSTM / nn.RNN run one step at a time
            self.decoder = recurrent(E + K, H, num_layers=num_layers, batch_first=True,
                                     dropout=dropout)
        if bidirectional:
            self.decoder_init = nn.Linear(H, H)  # Bahdanau's s_0 = tanh(W_s <-h_1 + b_s)
        scores = {"dot": lambda: DotScore(), "general": lambda: GeneralScore(H, K, A),
                  "additive": lambda: AdditiveScore(H, K, A)}
        self.attention = scores[score]()
        self.output = nn.Linear(H + K, target_vocab)

    def forward(self, source, lengths, target_in):
        B, L, H = source.shape[0], self.L, self.H
        states, last = run_rnn(self.encoder, self.encoder_embedding(source), lengths)
        h_n, c_n = last if self.cell == "lstm" else (last, None)  # (L*dirs, B, H)
        if self.dirs == 2:  # rows (layer, direction); direction 1 = backward, its state at j = 1
            h = torch.tanh(self.decoder_init(h_n.view(L, 2, B, H)[:, 1]))
            c = c_n.view(L, 2, B, H)[:, 1] if c_n is not None else None
        else:
            h, c = h_n, c_n
        if L == 1:
            h, c = h[0], (c[0] if c is not None else None)
        state = (h, c) if self.cell == "lstm" else h
        keys = self.attention.project_keys(states)
        mask = padding_mask(lengths, source.shape[1])
        context = torch.zeros(B, self.dirs * H)
        embedded = self.decoder_embedding(target_in)
        logits, weights = [], []
        for t in range(target_in.shape[1]):
            step_input = torch.cat([embedded[:, t], context], 1)
            if L == 1:
                state = self.decoder(step_input, state)
                s = state[0] if self.cell == "lstm" else state
            else:
                out, state = self.decoder(step_input.unsqueeze(1), state)
                s = out[:, 0]  # the top layer's new state
            e = self.attention.score(s, keys).masked_fill(mask, -math.inf)
            a = torch.softmax(e, dim=1)
            context = torch.bmm(a.unsqueeze(1), states).squeeze(1)
            logits.append(self.output(torch.cat([s, context], 1)))
            weights.append(a)
        return torch.stack(logits, 1), torch.stack(weights, 1)


class PositionalEncoding(nn.Module):  # the sinusoidal table as a buffer pe (max_len, d)
    def __init__(self, d_model, max_len=5000):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
        div_term = torch.pow(10000.0, torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
        pe = torch.zeros(max_len, d_model, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(position / div_term)
        pe[:, 1::2] = torch.cos(position / div_term[: d_model // 2])
        self.register_buffer("pe", pe.float())

    def forward(self, x):
        return x + self.pe[: x.shape[-2]]


class FeedForward(nn.Module):  # the linear1, dropout, linear2 of nn.TransformerEncoderLayer
    def __init__(self, d_model, d_ff, dropout=0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.linear2(self.dropout(torch.relu(self.linear1(x))))


class TinyTransformer(nn.Module):  # layers/transformer/transformer.hpp, of nn.TransformerEncoderLayer's
    def __init__(self, vocab_size, d_model, heads, d_ff, num_layers, max_len, norm_first=True):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positional = PositionalEncoding(d_model, max_len)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, heads, d_ff, dropout=0.0, batch_first=True,
                                       norm_first=norm_first) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size)

    def forward(self, tokens):
        T = tokens.shape[1]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        x = self.positional(self.embedding(tokens))
        for layer in self.layers:
            x = layer(x, src_mask=mask)
        return self.lm_head(self.norm(x))


# ---------------------------------------------------------------- the cases
#
# Each returns (module, inputs, run, to_attograd, from_attograd): run(module,
# inputs) gives the outputs by name.


def randomize_norms(module):  # so that weight = 1, bias = 0 cannot hide a mix-up
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)


def causal(T):
    return torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)


def ids(high, shape):
    return torch.randint(0, high, shape)


def case_linear():
    return (nn.Linear(4, 3), {"input": torch.randn(2, 5, 4)},
            lambda m, i: {"output": m(i["input"])}, identity, identity)


def case_embedding():
    return (nn.Embedding(10, 4), {"input": ids(10, (2, 5))},
            lambda m, i: {"output": m(i["input"])}, identity, identity)


def case_layer_norm():
    m = nn.LayerNorm(6)
    randomize_norms(m)
    return (m, {"input": 3 * torch.randn(2, 3, 6) + 1},
            lambda m, i: {"output": m(i["input"])}, identity, identity)


# nn.Conv1d on (B, C, T): the output, and the gradients of sum(output * upstream)
# with respect to the input and every parameter (grad mode on for this case).
def conv1d_case(module, input_shape, output_shape):
    def run(m, i):
        x = i["input"].clone().requires_grad_()
        with torch.enable_grad():
            y = m(x)
            (y * i["upstream"]).sum().backward()
        out = {"output": y, "grad_input": x.grad}
        for name, p in m.named_parameters():
            out["grad_" + name] = p.grad
        return out
    return (module, {"input": torch.randn(*input_shape), "upstream": torch.randn(*output_shape)},
            run, identity, identity)


def case_conv1d():  # stride 2, padding 2, dilation 2: T_out = (9 + 4 - 5) // 2 + 1 = 5
    return conv1d_case(nn.Conv1d(3, 4, 3, stride=2, padding=2, dilation=2), (2, 3, 9), (2, 4, 5))


def case_conv1d_no_bias():  # the defaults (stride 1, no padding), no bias: T_out = 9 - 1 = 8
    return conv1d_case(nn.Conv1d(3, 4, 2, bias=False), (2, 3, 9), (2, 4, 8))


def case_rnn_cell():
    return (nn.RNNCell(3, 5), {"input": torch.randn(2, 3), "h": torch.randn(2, 5)},
            lambda m, i: {"h_next": m(i["input"], i["h"])}, identity, identity)


def case_lstm_cell():
    def run(m, i):
        h, c = m(i["input"], (i["h"], i["c"]))
        return {"h_next": h, "c_next": c}
    return (nn.LSTMCell(3, 5),
            {"input": torch.randn(2, 3), "h": torch.randn(2, 5), "c": torch.randn(2, 5)},
            run, identity, identity)


# RNN and LSTM (one layer, two, bidirectional, both): once over full sequences
# from a given initial state (L*dirs, B, H), once over padded sequences of
# lengths 4, 2, 3 (packed in PyTorch) from zeros. Then the gradients, with
# respect to the input, the initial state and every parameter, of
# sum_name sum(outputs[name] * upstream[name]) over both runs' outputs, for
# fixed random upstream tensors: backward through every layer and direction,
# the padding included. Two layers have dropout 0.5 between them, which eval
# mode turns off (in attograd too).
def recurrent_case(kind, num_layers=1, bidirectional=False):
    lstm = kind == "lstm"
    dirs = 2 if bidirectional else 1
    m = (nn.LSTM if lstm else nn.RNN)(3, 5, num_layers=num_layers, batch_first=True,
                                      dropout=0.5 if num_layers > 1 else 0.0,
                                      bidirectional=bidirectional)
    inputs = {"input": torch.randn(3, 4, 3), "h0": torch.randn(num_layers * dirs, 3, 5)}
    if lstm:
        inputs["c0"] = torch.randn(num_layers * dirs, 3, 5)
    inputs["lengths"] = torch.tensor([4, 2, 3])
    state_shape = (num_layers * dirs, 3, 5)
    output_shapes = {"output": (3, 4, dirs * 5), "h_n": state_shape,
                     "packed_output": (3, 4, dirs * 5), "packed_h_n": state_shape}
    if lstm:
        output_shapes.update({"c_n": state_shape, "packed_c_n": state_shape})
    for name, shape in output_shapes.items():
        inputs["upstream." + name] = torch.randn(shape)

    def run(m, i):
        with torch.enable_grad():
            x = i["input"].clone().requires_grad_()
            h0 = i["h0"].clone().requires_grad_()
            leaves = {"input": x, "h0": h0}
            state = h0
            if lstm:
                c0 = i["c0"].clone().requires_grad_()
                leaves["c0"] = c0
                state = (h0, c0)
            out, last = run_rnn(m, x, None, state)
            packed_out, packed_last = run_rnn(m, x, i["lengths"].tolist())
            outputs = {"output": out, "packed_output": packed_out}
            if lstm:
                outputs.update({"h_n": last[0], "c_n": last[1], "packed_h_n": packed_last[0],
                                "packed_c_n": packed_last[1]})
            else:
                outputs.update({"h_n": last, "packed_h_n": packed_last})
            m.zero_grad()
            loss = sum((t * i["upstream." + n]).sum() for n, t in outputs.items())
            loss.backward()
            grads = {"grad." + n: t.grad for n, t in leaves.items()}
            grads.update({"grad." + n: p.grad for n, p in m.named_parameters()})
        return {**{n: t.detach() for n, t in outputs.items()},
                **{n: g.detach().clone() for n, g in grads.items()}}
    return m, inputs, run, identity, identity


def case_rnn():
    return recurrent_case("rnn")


def case_lstm():
    return recurrent_case("lstm")


def case_rnn_2_layers():
    return recurrent_case("rnn", num_layers=2)


def case_rnn_bidirectional():
    return recurrent_case("rnn", bidirectional=True)


def case_rnn_2_layers_bidirectional():
    return recurrent_case("rnn", num_layers=2, bidirectional=True)


def case_lstm_2_layers():
    return recurrent_case("lstm", num_layers=2)


def case_lstm_bidirectional():
    return recurrent_case("lstm", bidirectional=True)


def case_lstm_2_layers_bidirectional():
    return recurrent_case("lstm", num_layers=2, bidirectional=True)


# nn.MultiheadAttention through the in_proj mapping: cross-attention with a
# key padding mask, and self-attention with a causal mask.
def case_multi_head_attention():
    def run(m, i):
        out, w = m(i["query"], i["key"], i["value"], key_padding_mask=i["key_padding"] > 0,
                   average_attn_weights=False)
        self_out, self_w = m(i["x"], i["x"], i["x"], attn_mask=causal(i["x"].shape[1]),
                             average_attn_weights=False)
        return {"output": out, "weights": w, "self_output": self_out, "self_weights": self_w}
    return (nn.MultiheadAttention(8, 2, batch_first=True),
            {"query": torch.randn(2, 3, 8), "key": torch.randn(2, 4, 8),
             "value": torch.randn(2, 4, 8),
             "key_padding": padding_mask([4, 2], 4).float(), "x": torch.randn(2, 5, 8)},
            run, mha_to_attograd, mha_from_attograd)


def encoder_layer_case(norm_first):
    m = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first)
    randomize_norms(m)
    return (m, {"input": torch.randn(2, 5, 8)},
            lambda m, i: {"output": m(i["input"], src_mask=causal(i["input"].shape[1]))},
            encoder_layer_to_attograd, encoder_layer_from_attograd)


def case_transformer_encoder_layer():  # pre-norm, attograd's default
    return encoder_layer_case(norm_first=True)


def case_transformer_encoder_layer_post_norm():  # post-norm, PyTorch's default
    return encoder_layer_case(norm_first=False)


# The decoder layer and the whole nn.Transformer, compared on their outputs and
# on the gradients of sum(v * output) with respect to the inputs and every
# parameter (the sixth element: the inputs to differentiate). Masks as users
# bring them: the lookahead mask, a memory mask, and key padding on both sides.
def decoder_layer_case(norm_first):
    m = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first)
    randomize_norms(m)
    memory_mask = torch.tensor([[j > t + 1 for j in range(4)] for t in range(5)])

    def run(m, i):
        return {"output": m(i["tgt"], i["memory"], tgt_mask=causal(5), memory_mask=memory_mask,
                            tgt_key_padding_mask=i["tgt_key_padding"] > 0,
                            memory_key_padding_mask=i["memory_key_padding"] > 0)}
    return (m, {"tgt": torch.randn(2, 5, 8), "memory": torch.randn(2, 4, 8),
                "memory_mask": memory_mask.float(),
                "tgt_key_padding": padding_mask([5, 3], 5).float(),
                "memory_key_padding": padding_mask([4, 2], 4).float()},
            run, decoder_layer_to_attograd, decoder_layer_from_attograd, ["tgt", "memory"])


def case_transformer_decoder_layer():  # pre-norm, attograd's default
    return decoder_layer_case(norm_first=True)


def case_transformer_decoder_layer_post_norm():  # post-norm, PyTorch's default
    return decoder_layer_case(norm_first=False)


def transformer_case(norm_first):
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
                       dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first)
    randomize_norms(m)

    def run(m, i):
        source_padding = i["src_key_padding"] > 0
        return {"output": m(i["src"], i["tgt"], tgt_mask=causal(5),
                            src_key_padding_mask=source_padding,
                            tgt_key_padding_mask=i["tgt_key_padding"] > 0,
                            memory_key_padding_mask=source_padding)}
    return (m, {"src": torch.randn(2, 4, 8), "tgt": torch.randn(2, 5, 8),
                "src_key_padding": padding_mask([4, 3], 4).float(),
                "tgt_key_padding": padding_mask([5, 4], 5).float()},
            run, transformer_mapping(encoder_layer_to_attograd, decoder_layer_to_attograd, 2, 2),
            transformer_mapping(encoder_layer_from_attograd, decoder_layer_from_attograd, 2, 2),
            ["src", "tgt"])


def case_transformer():  # pre-norm
    return transformer_case(norm_first=True)


def case_transformer_post_norm():  # post-norm, PyTorch's default
    return transformer_case(norm_first=False)


def case_tiny_transformer():
    m = TinyTransformer(vocab_size=10, d_model=8, heads=2, d_ff=16, num_layers=2, max_len=12)
    randomize_norms(m)
    return (m, {"tokens": ids(10, (2, 6))}, lambda m, i: {"logits": m(i["tokens"])},
            layers_mapping(encoder_layer_to_attograd, 2),
            layers_mapping(encoder_layer_from_attograd, 2))


def case_point_attention():
    def run(m, i):
        context, a = m(i["input"])
        return {"context": context, "weights": a}
    return PointAttention(6), {"input": torch.randn(2, 5, 6)}, run, identity, identity


def case_self_attention():
    return (SelfAttention(d_model=8), {"input": torch.randn(2, 5, 8)},
            lambda m, i: {"output": m(i["input"])}, identity, identity)


def sequence_attention_case(module):
    def run(m, i):
        output, context, a = m(i["input"], i["lengths"].tolist())
        return {"output": output, "context": context, "weights": a}
    return (module, {"input": torch.randn(3, 4, 3), "lengths": torch.tensor([4, 2, 3])}, run,
            identity, identity)


def case_sequence_attention():
    return sequence_attention_case(SequenceAttention(3, 5))


def case_sequence_attention_lstm():
    return sequence_attention_case(SequenceAttention(3, 5, encoder="lstm"))


def case_sequence_attention_conv():
    return sequence_attention_case(SequenceAttention(3, 5, encoder="conv", kernel_size=3))


def score_case(module, query_size):
    def run(m, i):
        context, a = m(i["query"], i["keys"], i["mask"] > 0)
        return {"context": context, "weights": a}
    return (module, {"query": torch.randn(2, query_size), "keys": torch.randn(2, 4, 5),
                     "mask": padding_mask([4, 3], 4).float()}, run, identity, identity)


def case_dot_score():
    return score_case(DotScore(), 5)


def case_general_score():
    return score_case(GeneralScore(3, 5, 6), 3)


def case_additive_score():
    return score_case(AdditiveScore(3, 5, 6), 3)


def seq2seq_case(cell, score, num_layers=1, bidirectional=False):
    def run(m, i):
        logits, weights = m(i["source"], i["lengths"].tolist(), i["target_in"])
        return {"logits": logits, "attention": weights}
    m = Seq2Seq(source_vocab=7, target_vocab=9, E=4, H=5, A=6, cell=cell, score=score,
                num_layers=num_layers, bidirectional=bidirectional,
                dropout=0.5 if num_layers > 1 else 0.0)
    return (m, {"source": ids(7, (2, 4)), "lengths": torch.tensor([4, 3]),
                "target_in": ids(9, (2, 3))}, run, identity, identity)


def case_seq2seq_lstm_additive():
    return seq2seq_case("lstm", "additive")


def case_seq2seq_rnn_general():
    return seq2seq_case("rnn", "general")


def case_seq2seq_lstm_dot_2_layers():
    return seq2seq_case("lstm", "dot", num_layers=2)


def case_seq2seq_rnn_general_bidirectional():
    return seq2seq_case("rnn", "general", bidirectional=True)


def case_seq2seq_lstm_additive_2_layers_bidirectional():
    return seq2seq_case("lstm", "additive", num_layers=2, bidirectional=True)


def case_positional_encoding():
    return (PositionalEncoding(6, max_len=10), {"input": torch.randn(2, 4, 6)},
            lambda m, i: {"output": m(i["input"])}, identity, identity)


def case_feed_forward():
    return (FeedForward(6, 12), {"input": torch.randn(2, 3, 6)},
            lambda m, i: {"output": m(i["input"])}, identity, identity)


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


def build(name):
    """The case's module (seeded, eval mode), inputs, outputs and mappings.
    For a case with gradients, outputs also holds grad_output (v) and the
    gradients of sum(v * output): grad.INPUT and grad.PARAMETER (attograd's names)."""
    torch.manual_seed(sum(map(ord, name)))  # each case its own fixed seed
    module, inputs, run, to_ag, from_ag, *grad_inputs = CASES[name]()
    module.eval()
    if not grad_inputs:
        with torch.no_grad():
            outputs = run(module, inputs)
        return module, inputs, outputs, run, to_ag, from_ag
    # With gradients on, PyTorch also takes its plain path (its fused inference
    # path of the encoder layers is off), which is the one attograd computes.
    for n in grad_inputs[0]:
        inputs[n].requires_grad_(True)
    outputs = run(module, inputs)
    v = torch.randn(outputs["output"].shape)
    (outputs["output"] * v).sum().backward()
    grads = {f"grad.{n}": inputs[n].grad for n in grad_inputs[0]}
    params = to_ag({n: p.grad for n, p in module.named_parameters()})
    grads.update({f"grad.{n}": g for n, g in params.items()})
    inputs = {n: t.detach() for n, t in inputs.items()}
    outputs = {**{n: t.detach() for n, t in outputs.items()}, "grad_output": v, **grads}
    return module, inputs, outputs, run, to_ag, from_ag


def as_f32(tensors):
    return {n: t.float() for n, t in tensors.items()}


def main(names):
    for name in names or CASES:
        module, inputs, outputs, _, to_ag, _ = build(name)
        weights = to_ag(module.state_dict())
        save_safetensors(os.path.join(HERE, name + ".safetensors"), weights)
        save_safetensors(os.path.join(HERE, name + ".io.safetensors"),
                         as_f32({**inputs, **outputs}))
        shown = [n for n in outputs if not n.startswith("grad.")]
        grads = len(outputs) - len(shown)
        print(f"{name}: {len(weights)} tensors, outputs {', '.join(shown)}"
              + (f", {grads} gradients" if grads else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
