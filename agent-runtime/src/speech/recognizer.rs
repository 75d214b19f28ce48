//! Offline speech recognition with CMU PocketSphinx (Debian `libpocketsphinx-dev` and
//! `pocketsphinx-en-us`), through its C API.
//!
//! One [`Recognizer`] decodes one utterance at a time; it is not `Sync` and is used
//! from a blocking thread. The acoustic model is the 16 kHz US English model, so the
//! caller's 8 kHz audio is upsampled before it is fed in.
//!
//! The language model is built per agent from its own words (knowledge base, greeting,
//! the phrases that trigger its tools) by [`domain_language_model`]: on narrow-band
//! telephone audio the general English model finds words nobody said, while a small
//! model of what callers of this agent say keeps recognition on topic.
//!
//! The decoder's pronouncing dictionary is cut down to that model's words too
//! ([`Dictionary::subset`]): PocketSphinx builds its search over every dictionary word
//! when a decoder starts, which takes seconds for the whole CMUdict (about 135,000
//! words) and a fraction of a second for an agent's few hundred. The search is the same
//! either way, since the decoder can only hypothesize words the language model has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

#[allow(non_camel_case_types)]
type ps_decoder_t = c_void;
#[allow(non_camel_case_types)]
type cmd_ln_t = c_void;
#[allow(non_camel_case_types)]
type arg_t = c_void;

#[link(name = "pocketsphinx")]
#[link(name = "sphinxbase")]
unsafe extern "C" {
    fn ps_args() -> *const arg_t;
    fn ps_init(config: *mut cmd_ln_t) -> *mut ps_decoder_t;
    fn ps_free(ps: *mut ps_decoder_t) -> c_int;
    fn ps_start_utt(ps: *mut ps_decoder_t) -> c_int;
    fn ps_process_raw(
        ps: *mut ps_decoder_t,
        data: *const i16,
        n_samples: usize,
        no_search: c_int,
        full_utt: c_int,
    ) -> c_int;
    fn ps_end_utt(ps: *mut ps_decoder_t) -> c_int;
    fn ps_get_hyp(ps: *mut ps_decoder_t, out_best_score: *mut i32) -> *const c_char;
    fn cmd_ln_parse_r(
        inout: *mut cmd_ln_t,
        defn: *const arg_t,
        argc: i32,
        argv: *mut *mut c_char,
        strict: i32,
    ) -> *mut cmd_ln_t;
    fn cmd_ln_free_r(cmdln: *mut cmd_ln_t) -> c_int;
    fn err_set_logfp(stream: *mut c_void);
}

/// Where the Debian packages put the model.
pub const DEFAULT_MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us";

#[derive(Debug, thiserror::Error)]
pub enum RecognizerError {
    #[error("speech model file {0} is missing (install pocketsphinx-en-us)")]
    MissingModel(PathBuf),
    #[error("pocketsphinx could not load its configuration")]
    Config,
    #[error("pocketsphinx could not start a decoder")]
    Init,
    #[error("write the language model: {0}")]
    Io(#[from] std::io::Error),
}

/// A PocketSphinx decoder.
pub struct Recognizer {
    ps: *mut ps_decoder_t,
    config: *mut cmd_ln_t,
    upsampled: Vec<i16>,
}

// The decoder is only ever used by one thread at a time (it is `!Sync`); PocketSphinx
// keeps no thread-local state, so moving it between threads is sound.
unsafe impl Send for Recognizer {}

impl Recognizer {
    /// A decoder with the acoustic model under `model_dir`, the language model at `lm`
    /// (ARPA text or binary) and the pronouncing dictionary at `dict`.
    pub fn new(model_dir: &Path, lm: &Path, dict: &Path) -> Result<Self, RecognizerError> {
        let hmm = model_dir.join("en-us");
        for p in [&hmm, &dict.to_path_buf(), &lm.to_path_buf()] {
            if !p.exists() {
                return Err(RecognizerError::MissingModel(p.clone()));
            }
        }
        let args = [
            "recognizer".to_owned(),
            "-hmm".to_owned(),
            hmm.display().to_string(),
            "-dict".to_owned(),
            dict.display().to_string(),
            "-lm".to_owned(),
            lm.display().to_string(),
            "-samprate".to_owned(),
            "16000".to_owned(),
        ];
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| RecognizerError::Config))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*mut c_char> = cargs.iter().map(|a| a.as_ptr().cast_mut()).collect();
        // SAFETY: argv points at NUL-terminated strings that outlive the call;
        // cmd_ln_parse_r copies what it keeps.
        unsafe {
            err_set_logfp(std::ptr::null_mut());
            let config = cmd_ln_parse_r(std::ptr::null_mut(), ps_args(), argv.len() as i32, argv.as_mut_ptr(), 1);
            if config.is_null() {
                return Err(RecognizerError::Config);
            }
            let ps = ps_init(config);
            if ps.is_null() {
                cmd_ln_free_r(config);
                return Err(RecognizerError::Init);
            }
            Ok(Self { ps, config, upsampled: Vec::new() })
        }
    }

    /// The words in one utterance of 8 kHz linear PCM, lowercase, or an empty string.
    pub fn recognize_8khz(&mut self, samples: &[i16]) -> String {
        self.upsampled.clear();
        crate::audio::upsample_2x(samples, &mut self.upsampled);
        // SAFETY: the decoder is valid for the life of self; the sample buffer is
        // borrowed for the duration of the call; the hypothesis string is owned by the
        // decoder and copied before the next call into it.
        unsafe {
            if ps_start_utt(self.ps) < 0 {
                return String::new();
            }
            ps_process_raw(self.ps, self.upsampled.as_ptr(), self.upsampled.len(), 0, 1);
            ps_end_utt(self.ps);
            let mut score = 0;
            let hyp = ps_get_hyp(self.ps, &mut score);
            if hyp.is_null() { String::new() } else { CStr::from_ptr(hyp).to_string_lossy().trim().to_owned() }
        }
    }
}

impl Drop for Recognizer {
    fn drop(&mut self) {
        // SAFETY: both were created in `new` and are freed once.
        unsafe {
            ps_free(self.ps);
            cmd_ln_free_r(self.config);
        }
    }
}

/// The pronouncing dictionary that comes with the acoustic model (CMUdict).
pub struct Dictionary {
    text: String,
}

impl Dictionary {
    pub const FILE: &str = "cmudict-en-us.dict";

    pub fn load(model_dir: &Path) -> Result<Self, RecognizerError> {
        let path = model_dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).map_err(|_| RecognizerError::MissingModel(path))?;
        Ok(Self { text })
    }

    /// The words it knows (alternate pronunciations, `word(2)`, are the same word).
    pub fn words(&self) -> BTreeSet<&str> {
        self.text.lines().filter_map(head_word).collect()
    }

    /// Its entries for the words of `vocabulary`, every pronunciation of each, in the
    /// dictionary's own format.
    pub fn subset(&self, vocabulary: &BTreeSet<&str>) -> String {
        let mut out = String::new();
        for line in self.text.lines() {
            if head_word(line).is_some_and(|w| vocabulary.contains(w)) {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

/// The word an entry is for: `hello HH AH L OW` and `hello(2) HH EH L OW` are both
/// `hello`.
fn head_word(entry: &str) -> Option<&str> {
    let token = entry.split_whitespace().next()?;
    Some(token.split_once('(').map_or(token, |(w, _)| w))
}

/// An ARPA bigram language model of `sentences` (lowercase words), with absolute
/// discounting and back-off to unigrams. Words the dictionary does not know are left
/// out.
pub fn domain_language_model(sentences: &[Vec<String>], known: &BTreeSet<&str>) -> String {
    const DISCOUNT: f64 = 0.5;
    let mut unigrams: BTreeMap<&str, f64> = BTreeMap::new();
    let mut bigrams: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for sentence in sentences {
        let words: Vec<&str> = std::iter::once("<s>")
            .chain(sentence.iter().map(String::as_str).filter(|w| known.contains(w)))
            .chain(std::iter::once("</s>"))
            .collect();
        if words.len() <= 2 {
            continue;
        }
        for w in &words {
            *unigrams.entry(w).or_default() += 1.0;
        }
        for pair in words.windows(2) {
            *bigrams.entry((pair[0], pair[1])).or_default() += 1.0;
        }
    }
    let total: f64 = unigrams.values().sum();
    let mut followers: HashMap<&str, (f64, f64)> = HashMap::new(); // (count as history, distinct followers)
    for ((a, _), c) in &bigrams {
        let e = followers.entry(a).or_default();
        e.0 += c;
        e.1 += 1.0;
    }
    let mut out = String::new();
    out.push_str(&format!("\\data\\\nngram 1={}\nngram 2={}\n\n\\1-grams:\n", unigrams.len(), bigrams.len()));
    for (w, c) in &unigrams {
        let p = if *w == "<s>" { -99.0 } else { (c / total).log10() };
        let backoff = followers.get(w).map_or(0.0, |(n, d)| (DISCOUNT * d / n).log10());
        out.push_str(&format!("{p:.4} {w} {backoff:.4}\n"));
    }
    out.push_str("\n\\2-grams:\n");
    for ((a, b), c) in &bigrams {
        let (n, _) = followers[a];
        out.push_str(&format!("{:.4} {a} {b}\n", ((c - DISCOUNT) / n).log10()));
    }
    out.push_str("\n\\end\\\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMUDICT: &str =
        "hello HH AH L OW\nhello(2) HH EH L OW\nhelp HH EH L P\nhours AW ER Z\nhours(2) AW R Z\nopen OW P AH N\n";

    #[test]
    fn a_subset_keeps_every_pronunciation_of_the_words_asked_for_and_nothing_else() {
        let dictionary = Dictionary { text: CMUDICT.to_owned() };
        assert_eq!(dictionary.words(), BTreeSet::from(["hello", "help", "hours", "open"]));
        let subset = dictionary.subset(&BTreeSet::from(["hello", "hours", "unknown"]));
        assert_eq!(subset, "hello HH AH L OW\nhello(2) HH EH L OW\nhours AW ER Z\nhours(2) AW R Z\n");
        assert_eq!(dictionary.subset(&BTreeSet::new()), "");
    }

    #[test]
    fn the_language_model_leaves_out_words_the_dictionary_does_not_know() {
        let known = BTreeSet::from(["hello", "hours", "open"]);
        let sentences =
            vec![vec!["hello".to_owned(), "zyzzyva".to_owned(), "open".to_owned()], vec!["zyzzyva".to_owned()]];
        let lm = domain_language_model(&sentences, &known);
        assert!(lm.contains("ngram 1=4\n"), "<s>, </s>, hello, open: {lm}");
        assert!(lm.contains(" hello open\n"), "{lm}");
        assert!(!lm.contains("zyzzyva"), "{lm}");
    }
}
