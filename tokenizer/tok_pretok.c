/* BPE pre-tokenizers: llama.cpp's regexes per tokenizer.ggml.pre name, run through PCRE2; the
 * GPT-2 byte <-> unicode mapping; the check-text hashes of known tokenizers.
 *
 * How llama.cpp's regex engine is reproduced (src/unicode.cpp, unicode_regex_split):
 *  - The text is decoded into code points as llama.cpp decodes it (malformed bytes become
 *    U+FFFD); each regex of the list is applied to every piece left by the previous one, and
 *    both the matches and the text between them become pieces (empty ones dropped). A match
 *    never crosses a piece boundary and look-arounds see the piece's ends as the text's ends.
 *  - llama.cpp hands every non-ASCII white-space character to its regex engine as U+000B; the
 *    subject PCRE2 sees does the same (so U+0085 is \s, and U+3000 is not matched by an
 *    explicit range that contains it). Surrogates decoded from malformed UTF-8 are given to
 *    PCRE2 as U+E000 (both are \p{C}).
 *  - llama.cpp runs these regexes on "collapsed" text (one byte per category for non-ASCII
 *    characters), so it reads \p{Lu} \p{Ll} \p{Lt} \p{Lm} \p{Lo} as \p{L}, and its \p{S} lacks
 *    '~' (U+007E is Sm): the patterns are rewritten to mean the same (collapse_pattern). Its
 *    hand-written matchers for the gpt-2, llama3, qwen2 and qwen35 regexes use the real
 *    categories; those regexes have no \p{S}.
 *  - $ matches only at the end of a piece (PCRE2_DOLLAR_ENDONLY, as std::regex's ECMAScript $).
 *  - Empty matches advance one character, as std::regex_iterator does.
 * Known difference: PCRE2's Unicode tables (10.42: Unicode 14) against llama.cpp's own (newer)
 * for characters assigned since.
 * A piece whose matching exceeds PCRE2's match limit fails with TOK_ERR_LIMIT.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "common/qf_utf8.h"
#include "tokenizer/tok_internal.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

enum {
    MATCH_LIMIT = 50000000,   /* PCRE2 match() calls per search */
    JIT_STACK_MAX = 1 << 20,  /* bytes */
};

/* ---- the pre-tokenizers (llama.cpp's llm_tokenizer_bpe regexes and load-time flags) ---- */

static const char *const re_default[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "\\p{N}+",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const re_minicpm5[] = {
    "\\p{N}{1,3}",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_llama3[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL,
};
static const char *const re_deepseek_coder[] = {
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}",
    NULL,
};
static const char *const re_deepseek3[] = {
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_youtu[] = {
    "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_falcon[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|`]+",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    "[0-9][0-9][0-9]",
    NULL,
};
static const char *const re_gpt2[] = {
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const re_starcoder[] = {
    "\\p{N}",
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
    NULL,
};
static const char *const re_jais2[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
    NULL,
};
static const char *const re_qwen2[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_qwen35[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_poro[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    NULL,
};
static const char *const re_viking[] = {
    " ?[^(\\s|.,!?…。，、।۔،)]+",
    "\\p{N}",
    NULL,
};
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_exaone_moe[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_granite_emb_multi[] = {
    "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_seed_coder[] = {
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};
static const char *const re_laguna[] = {
    "[^\\n]+|[\\n]+",
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL,
};

static const tok_pre_def k_pre[] = {
    {"default", re_default, 0},
    {"minicpm5", re_minicpm5, TOK_PRE_IGNORE_MERGES},
    {"llama3", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"llama-v3", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"llama-bpe", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"falcon3", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"falcon-h1", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"pixtral", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"midm-2.0", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"lfm2", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"jina-v5-nano", re_llama3, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"deepseek-llm", re_deepseek_llm, 0},
    {"deepseek-coder", re_deepseek_coder, 0},
    {"deepseek-v3", re_deepseek3, 0},
    {"youtu", re_youtu, TOK_PRE_IGNORE_MERGES},
    {"falcon", re_falcon, 0},
    {"mpt", re_gpt2, 0},
    {"starcoder", re_starcoder, 0},
    {"gpt-2", re_gpt2, 0},
    {"phi-2", re_gpt2, 0},
    {"jina-es", re_gpt2, 0},
    {"jina-de", re_gpt2, 0},
    {"gigachat", re_gpt2, 0},
    {"jina-v2-es", re_gpt2, 0},
    {"jina-v2-de", re_gpt2, 0},
    {"a.x-4.0", re_gpt2, 0},
    {"mellum", re_gpt2, 0},
    {"modern-bert", re_gpt2, 0},
    {"jais-2", re_jais2, 0},
    {"refact", re_starcoder, 0},
    {"command-r", re_starcoder, 0},
    {"qwen2", re_qwen2, 0},
    {"deepseek-r1-qwen", re_qwen2, 0},
    {"kormo", re_qwen2, 0},
    {"f2llmv2", re_qwen2, 0},
    {"qwen35", re_qwen35, 0},
    {"stablelm2", re_qwen2, 0},
    {"olmo", re_gpt2, 0},
    {"dbrx", re_llama3, 0},
    {"smaug-bpe", re_llama3, 0},
    {"poro-chat", re_poro, 0},
    {"glm4", re_llama3, TOK_PRE_NO_BOS},
    {"chatglm-bpe", re_llama3, TOK_PRE_NO_BOS},
    {"viking", re_viking, 0},
    {"jais", re_gpt2, 0},
    {"tekken", re_tekken, TOK_PRE_IGNORE_MERGES | TOK_PRE_ADD_BOS},
    {"smollm", re_starcoder, 0},
    {"codeshell", re_starcoder, 0},
    {"bloom", re_poro, 0},
    {"gpt3-finnish", re_poro, 0},
    {"exaone", re_starcoder, 0},
    {"exaone4", re_gpt2, 0},
    {"exaone-moe", re_exaone_moe, 0},
    {"minerva-7b", re_starcoder, 0},
    {"megrez", re_qwen2, 0},
    {"gpt-4o", re_gpt4o, 0},
    {"llama4", re_gpt4o, 0},
    {"kanana2", re_gpt4o, 0},
    {"talkie", re_gpt4o, 0},
    {"granite-embed-multi-97m", re_granite_emb_multi, TOK_PRE_IGNORE_MERGES},
    {"trillion", re_gpt2, 0},
    {"granite-docling", re_gpt2, 0},
    {"bailingmoe", re_bailingmoe, 0},
    {"bailingmoe2", re_bailingmoe, 0},
    {"llada-moe", re_bailingmoe, 0},
    {"seed-coder", re_seed_coder, 0},
    {"hunyuan", re_qwen2, 0},
    {"hunyuan-dense", re_deepseek3, 0},
    {"joyai-llm", re_deepseek3, 0},
    {"grok-2", re_qwen2, 0},
    {"laguna", re_laguna, 0},
    {"minimax-m2", re_gpt4o, 0},
    {"solar-open", re_qwen2, 0},
    {"mellum2", re_starcoder, 0},
};

static const struct {
    const char *sha256, *name;
} k_pre_hash[] = {
    {"b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b", "chatglm-bpe"},
    {"81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516", "chatglm-bpe"},
    {"a1336059768a55c99a734006ffb02203cd450fed003e9a71886c88acf24fdbc2", "glm4"},
    {"9ca2dd618e8afaf09731a7cf6e2105b373ba6a1821559f258b272fe83e6eb902", "glm4"},
    {"cdf5f35325780597efd76153d4d1c16778f766173908894c04afc20108536267", "glm4"},
    {"1431a23e583c97432bc230bff598d103ddb5a1f89960c8f1d1051aaa944d0b35", "minerva-7b"},
    {"7e57df22b1fe23a7b1e1c7f3dc4e3f96d43a4eb0836d0c6bdc3436d7b2f1c664", "hunyuan"},
    {"bba3b3366b646dbdded5dbc42d59598b849371afc42f7beafa914afaa5b70aa6", "hunyuan-dense"},
    {"a6b57017d60e6edb4d88ecc2845188e0eb333a70357e45dcc9b53964a73bbae6", "falcon-h1"},
    {"60476e1243776c4fb1b993dbd7a5f15ac22f83c80afdf425fa5ae01c8d44ef86", "falcon-h1"},
    {"3eda48b4c4dc7de733d1a8b3e3b4a85243dbbf704da2ee9d42c6beced8897896", "falcon-h1"},
    {"48f8e02c0359c0bbdd82f26909171fac1c18a457bb47573ed1fe3bbb2c1cfd4b", "falcon-h1"},
    {"d4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c", "qwen2"},
    {"1444df51289cfa8063b96f0e62b1125440111bc79a52003ea14b6eac7016fd5f", "qwen35"},
    {"66b8d4e19ab16c3bfd89bce5d785fb7e0155e8648708a1f42077cb9fe002c273", "grok-2"},
    {"b3d1dd861f1d4c5c0d2569ce36baf3f90fe8a102db3de50dd71ff860d91be3df", "jina-v2-de"},
    {"0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4", "gpt-2"},
    {"9e454714343b69b99b71795c1d27a68c2a1d15dab111f4d353109f966af29da7", "lfm2"},
    {"0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5", "llama-bpe"},
    {"049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754", "deepseek-llm"},
    {"347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821", "deepseek-coder"},
    {"8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed", "falcon"},
    {"9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e", "falcon3"},
    {"b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166", "olmo"},
    {"35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34", "starcoder"},
    {"3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454", "gpt-2"},
    {"32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3", "stablelm2"},
    {"6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff", "refact"},
    {"9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8", "command-r"},
    {"e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea", "qwen2"},
    {"a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e", "dbrx"},
    {"171aeeedd6fb548d418a7461d053f11b6f1f1fc9b387bd66640d28a4b9f5c643", "jina-v2-es"},
    {"27949a2493fc4a9f53f5b9b029c82689cfbe5d3a1929bb25e043089e28466de6", "jina-v2-de"},
    {"a023e9fdc5a11f034d3ef515b92350e56fb2af1f66c6b6811a4444ea9bf8763d", "jina-v5-nano"},
    {"c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d", "smaug-bpe"},
    {"c7ea5862a53e4272c035c8238367063e2b270d51faa48c0f09e9d5b54746c360", "poro-chat"},
    {"7fc505bd3104ca1083b150b17d088b59534ede9bde81f0dd2090967d7fe52cee", "viking"},
    {"b53802fb28e26d645c3a310b34bfe07da813026ec7c7716883404d5e0f8b1901", "jais"},
    {"bc5108ee1eb6a3d600cadd065f63190fbd0554dbc9e4bbd6a0d977970afc8d2a", "jais-2"},
    {"7b3e7548e4308f52a76e8229e4e6cc831195d0d1df43aed21ac6c93da05fec5f", "codeshell"},
    {"63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e", "tekken"},
    {"855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249", "smollm"},
    {"3c30d3ad1d6b64202cd222813e7736c2db6e1bd6d67197090fc1211fbc612ae7", "bloom"},
    {"bc01ce58980e1db43859146dc51b1758b3b88729b217a74792e9f8d43e479d21", "gpt3-finnish"},
    {"4e2b24cc4770243d65a2c9ec19770a72f08cffc161adbb73fcbb6b7dd45a0aae", "exaone"},
    {"fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085", "phi-2"},
    {"ad851be1dba641f2e3711822f816db2c265f788b37c63b4e1aeacb9ee92de8eb", "gigachat"},
    {"d4c8f286ea6b520b3d495c4455483cfa2302c0cfcd4be05d781b6a8a0a7cdaf1", "megrez"},
    {"877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5", "deepseek-v3"},
    {"b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5", "deepseek-r1-qwen"},
    {"ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e", "gpt-4o"},
    {"1994ffd01900cfb37395608534236ecd63f2bd5995d6cb1004dda1af50240f15", "trillion"},
    {"96a5f08be6259352137b512d4157e333e21df7edd3fcd152990608735a65b224", "bailingmoe"},
    {"d353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406", "llama4"},
    {"0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3", "pixtral"},
    {"d5f1dd6f980fec569fb218a81a7658ac45fc56b38c5a0adeb1c232fbe04ef5ec", "seed-coder"},
    {"b0a6b1c0bd5998ebd9df08611efde34a4ff03faed45ae09c43e6b31ebd4b94cf", "a.x-4.0"},
    {"f6791d196f87ce6b56a7d234be618e0d58f8cda3549416635b2bebcd22cd95c4", "midm-2.0"},
    {"169bf0296a13c4d9b7672313f749eb36501d931022de052aad6e36f2bf34dd51", "lfm2"},
    {"2085e1638f6c377a0aa4ead21b27bb4cb941bf800df86ed391011769c1758dfb", "exaone4"},
    {"a1e163ecab2e718a4c829d1148b6e86824ec36163bb71941c3dca9cd5ac25756", "mellum"},
    {"a0b64b4385f123663873756336c085744376d015ff328bb1d901598f63c44152", "modern-bert"},
    {"9b1be57e70d20d9501b2b3186e792d81181ae36ada3903c26f9fea418cf87206", "bailingmoe2"},
    {"53e325976a6e142379c19b09afcae354f2f496f147afa8f9e189a33fe4e3024e", "granite-docling"},
    {"f4f37b6c8eb9ea29b3eac6bb8c8487c5ab7885f8d8022e67edc1c68ce8403e95", "minimax-m2"},
    {"4a2e2abae11ca2b86d570fc5b44be4d5eb5e72cc8f22dd136a94b37da83ab665", "kormo"},
    {"9d70134b369a70e5735009b6de918f7581b5211f7c074d1f89f753aea8248af1", "youtu"},
    {"16389f0a1f51ee53e562ffd51c371dc508639ab0e4261502071836e50e223e91", "solar-open"},
    {"6c81ce329e0802883b22eabab0d3fa48357337ef1ecb45443828bf1f6254833f", "exaone-moe"},
    {"d30d75d9059f1aa2c19359de71047b3ae408c70875e8a3ccf8c5fba56c9d8af4", "qwen35"},
    {"b4b8ca1f9769494fbd956ebc4c249de6131fb277a4a3345a7a92c7dd7a55808d", "joyai-llm"},
    {"e4d54df1ebc1f2b91acd986c5b51aa50837d5faf7c7398e73c1f9e9ee5d19869", "kanana2"},
    {"862f827721df956049dff5ca81a57f29e575280bc622e290d3bf4e35eca29015", "f2llmv2"},
    {"f728162c1315c26e40249849799b4ba3fe584c32084b4795b03eb295e63cb5af", "talkie"},
    {"36f3066e97b7f3994b379aaacde306c1444c6ae84e81a5ae3cd2b7ed3b8c42d4", "minicpm5"},
    {"f241072145675bf8322086f115aebad05e9f869557a238bf2150a2a417d1bf60", "granite-embed-multi-97m"},
    {"9dcf830ee9990cdbf78cc523a5f7bd9ad8f3f9890c2d3581d2785ad10f07049d", "mellum2"},
    {"972da7b59cec44d1f0a490a86c96df53859e486e481563e5dddac155013d87ac", "laguna"},
};

#define N_PRE (sizeof k_pre / sizeof *k_pre)
#define N_HASH (sizeof k_pre_hash / sizeof *k_pre_hash)

/* llama.cpp's get_vocab_base_pre check text. */
const char tok_pre_check_text_[] =
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\xf0\x9f\x9a\x80 (normal) \xf0\x9f\x98\xb6\xe2\x80\x8d\xf0\x9f\x8c\xab\xef\xb8\x8f "
    "(multiple emojis concatenated) \xe2\x9c\x85 \xf0\x9f\xa6\x99\xf0\x9f\xa6\x99 3 33 333 3333 "
    "33333 333333 3333333 33333333 3.3 3..3 3...3 \xe1\x9e\x80\xe1\x9e\xb6\xe1\x9e\x93\xe1\x9f\x8b\xe1\x9e\x8f\xe1\x9f\x82\xe1\x9e\x96\xe1\x9e\xb7\xe1\x9e\x9f\xe1\x9f\x81\xe1\x9e\x9f\xe1\x9e\xa2\xe1\x9e\xb6\xe1\x9e\x85\xf0\x9f\x98\x81 "
    "?\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple\xe5\xb7\xa5\xe4\xbd\x9c" "1314151\xe5\xa4\xa9\xef\xbd\x9e "
    "------======= \xd0\xbd\xd0\xb5\xd1\x89\xd0\xbe \xd0\xbd\xd0\xb0 \xd0\x91\xd1\x8a\xd0\xbb\xd0\xb3\xd0\xb0\xd1\x80\xd1\x81\xd0\xba\xd0\xb8 "
    "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not su"
    "re I'll make it, 'D you like some tea? We'Ve a'lL";

const tok_pre_def *tok_pre_find_(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_PRE; i++)
        if (strcmp(k_pre[i].name, name) == 0)
            return &k_pre[i];
    return NULL;
}

size_t tok_pre_count(void) { return N_PRE; }
const char *tok_pre_name(size_t i) { return i < N_PRE ? k_pre[i].name : NULL; }
const tok_pre_def *tok_pre_def_at_(size_t i) { return i < N_PRE ? &k_pre[i] : NULL; }

const char *tok_pre_hash_name_(const char *sha256_hex)
{
    for (size_t i = 0; i < N_HASH; i++)
        if (strcmp(k_pre_hash[i].sha256, sha256_hex) == 0)
            return k_pre_hash[i].name;
    return NULL;
}

/* ---- UTF-8 and the GPT-2 byte mapping ---- */

uint32_t tok_utf8_decode_(const char *str, size_t n, size_t *i)
{
    const uint8_t *s = (const uint8_t *)str + *i;
    size_t left = n - *i;
    uint8_t c = s[0];
    size_t l = c < 0x80 ? 1 : c < 0xc0 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 0;
    if (l == 1) {
        *i += 1;
        return c;
    }
    if (l == 0 || l > left)
        goto bad;
    uint32_t v = c & (0x7f >> l);
    for (size_t j = 1; j < l; j++) {
        if ((s[j] & 0xc0) != 0x80)
            goto bad;
        v = v << 6 | (s[j] & 0x3f);
    }
    if (v > 0x10ffff)
        goto bad;
    *i += l;
    return v;
bad:
    *i += 1;
    return 0xfffd;
}

size_t tok_utf8_encode_(uint32_t c, char out[4])
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | c >> 12);
        out[1] = (char)(0x80 | (c >> 6 & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18 & 0x07));
    out[1] = (char)(0x80 | (c >> 12 & 0x3f));
    out[2] = (char)(0x80 | (c >> 6 & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

bool tok_utf8_valid_(const char *str, size_t n) { return qf_utf8_invalid_at(str, n) == n; }

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * (0x00-0x20, 0x7F-0xA0, 0xAD) for U+0100.. in byte order. */
static uint32_t byte_cpt(uint8_t b)
{
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae)
        return b;
    return 256u + (b <= 0x20 ? b : b <= 0xa0 ? 33u + (b - 0x7fu) : 67u);
}

size_t tok_byte_to_utf8_(uint8_t b, char out[2])
{
    char tmp[4];
    size_t l = tok_utf8_encode_(byte_cpt(b), tmp);
    memcpy(out, tmp, l);
    return l;
}

int tok_cpt_to_byte_(uint32_t c)
{
    if ((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))
        return (int)c;
    if (c >= 256 && c < 256 + 33)
        return (int)(c - 256);
    if (c >= 256 + 33 && c < 256 + 67)
        return (int)(0x7f + c - (256 + 33));
    return c == 256 + 67 ? 0xad : -1;
}

/* llama.cpp's white-space set (unicode_set_whitespace: Unicode White_Space). */
static bool is_whitespace(uint32_t c)
{
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* ---- compiled pre-tokenizer ---- */

struct tok_pretok {
    size_t n;
    pcre2_code *re[8];
};

void tok_pretok_free_(tok_pretok *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        pcre2_code_free(p->re[i]);
    free(p);
}

/* Append n bytes to a growing pattern. */
static bool put(char **o, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *p = realloc(*o, c);
        if (!p)
            return false;
        *o = p;
        *cap = c;
    }
    memcpy(*o + *len, s, n);
    *len += n;
    (*o)[*len] = 0;
    return true;
}

/* The pattern as llama.cpp's collapsed categories read it (malloc'ed):
 *  - \p{Lu} \p{Ll} \p{Lt} \p{Lm} \p{Lo} are \p{L};
 *  - '~' is not \p{S} (its ASCII symbol list lacks it): outside a class \p{S} becomes
 *    (?:(?!~)\p{S}); a class naming \p{S} and not '~' becomes (?:(?!~)[...]), or (?:~|[^...])
 *    when negated. The patterns of the table have no nested classes. */
static char *collapse_pattern(const char *re)
{
    size_t n = strlen(re), len = 0, cap = 0;
    char *o = NULL;
    bool ok = put(&o, &len, &cap, "", 0);
    for (size_t i = 0; ok && i < n;) {
        if (strncmp(re + i, "\\p{L", 4) == 0 && i + 6 <= n && re[i + 5] == '}' && strchr("ultmo", re[i + 4])) {
            ok = put(&o, &len, &cap, "\\p{L}", 5);
            i += 6;
        } else if (strncmp(re + i, "\\p{S}", 5) == 0) {
            ok = put(&o, &len, &cap, "(?:(?!~)\\p{S})", 14);
            i += 5;
        } else if (re[i] == '\\' && i + 1 < n) {
            ok = put(&o, &len, &cap, re + i, 2);
            i += 2;
        } else if (re[i] == '[') { /* a class: find its end, then copy it (rewritten) */
            size_t j = i + 1 + (re[i + 1] == '^'), k = j;
            bool sym = false, tilde = false;
            for (; k < n && re[k] != ']'; k++) {
                if (re[k] == '\\' && k + 1 < n) {
                    sym |= strncmp(re + k, "\\p{S}", 5) == 0;
                    tilde |= re[k + 1] == '~';
                    k++;
                } else {
                    tilde |= re[k] == '~';
                }
            }
            char *cls = malloc(k - i + 2);
            if (!cls) {
                ok = false;
                break;
            }
            memcpy(cls, re + i, k - i + 1);
            cls[k - i + 1] = 0;
            char *inner = NULL;
            size_t il = 0, ic = 0;
            ok = put(&inner, &il, &ic, "", 0); /* the class with \p{Lx} collapsed */
            for (size_t t = 0; ok && t < k - i + 1;) {
                bool lx = strncmp(cls + t, "\\p{L", 4) == 0 && cls[t + 4] && strchr("ultmo", cls[t + 4]) && cls[t + 5] == '}';
                ok = lx ? put(&inner, &il, &ic, "\\p{L}", 5) : put(&inner, &il, &ic, cls + t, cls[t] == '\\' ? 2 : 1);
                t += lx ? 6 : cls[t] == '\\' ? 2 : 1;
            }
            if (ok && sym && !tilde)
                ok = put(&o, &len, &cap, re[i + 1] == '^' ? "(?:~|" : "(?:(?!~)", re[i + 1] == '^' ? 5 : 8) &&
                     put(&o, &len, &cap, inner, il) && put(&o, &len, &cap, ")", 1);
            else if (ok)
                ok = put(&o, &len, &cap, inner, il);
            free(inner);
            free(cls);
            i = k + 1;
        } else {
            ok = put(&o, &len, &cap, re + i, 1);
            i++;
        }
    }
    if (!ok) {
        free(o);
        return NULL;
    }
    return o;
}

tok_error tok_pretok_create_(const tok_pre_def *def, tok_pretok **out, char *msg)
{
    *out = NULL;
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    for (size_t i = 0; def->regex[i]; i++) {
        if (i >= sizeof p->re / sizeof *p->re) {
            tok_pretok_free_(p);
            tok_set_msg_(msg, "pre-tokenizer '%s' has too many regexes", def->name);
            return TOK_ERR_ARG;
        }
        char *pat = collapse_pattern(def->regex[i]);
        if (!pat)
            goto nomem;
        int err;
        PCRE2_SIZE at;
        p->re[i] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                                 &err, &at, NULL);
        free(pat);
        if (!p->re[i]) {
            PCRE2_UCHAR em[128];
            pcre2_get_error_message(err, em, sizeof em);
            tok_pretok_free_(p);
            tok_set_msg_(msg, "pre-tokenizer '%s': regex %zu does not compile at offset %zu: %s", def->name, i,
                         (size_t)at, (const char *)em);
            return err == PCRE2_ERROR_NOMEMORY ? TOK_ERR_NOMEM : TOK_ERR_ARG;
        }
        p->n = i + 1;
        (void)pcre2_jit_compile(p->re[i], PCRE2_JIT_COMPLETE); /* the interpreter when JIT is unavailable */
    }
    *out = p;
    return TOK_OK;
nomem:
    tok_pretok_free_(p);
    tok_set_msg_(msg, "out of memory compiling the pre-tokenizer");
    return TOK_ERR_NOMEM;
}

/* ---- splitting ---- */

void tok_words_free_(tok_words *w)
{
    free(w->buf);
    free(w->end);
    free(w->cpt);
    free(w->subj);
    free(w->subj_off);
    free(w->seg);
    free(w->seg2);
    pcre2_match_data_free(w->match);
    pcre2_match_context_free(w->mctx);
    pcre2_jit_stack_free(w->jit_stack);
    memset(w, 0, sizeof *w);
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    if (c > SIZE_MAX / elem)
        return false;
    void *q = realloc(*p, c * elem);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* Code points of text and the subject the regexes see. */
static bool decode(tok_words *w, const char *text, size_t len, size_t *nc)
{
    if (!grow((void **)&w->cpt, &w->cpt_cap, len + 1, sizeof *w->cpt) ||
        !grow((void **)&w->subj_off, &w->subj_off_cap, len + 1, sizeof *w->subj_off) ||
        !grow((void **)&w->subj, &w->subj_cap, 4 * len + 1, 1))
        return false;
    size_t n = 0, pos = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = tok_utf8_decode_(text, len, &i);
        uint32_t s = c < 0x80 ? c : is_whitespace(c) ? 0x0b : (c >= 0xd800 && c <= 0xdfff) ? 0xe000 : c;
        w->cpt[n] = c;
        w->subj_off[n++] = pos;
        pos += tok_utf8_encode_(s, w->subj + pos);
    }
    w->subj_off[n] = pos;
    *nc = n;
    return true;
}

/* Index of the code point starting at subject byte b (b is a match boundary, so one exists). */
static size_t cpt_at(const tok_words *w, size_t lo, size_t hi, size_t b)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->subj_off[mid] < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Cut the piece [s, e) at every match of re; cut points go to w->seg2 (n2 so far). */
static tok_error split_piece(const pcre2_code *re, tok_words *w, size_t s, size_t e, size_t *n2, char *msg)
{
    PCRE2_SPTR subj = (PCRE2_SPTR)w->subj + w->subj_off[s];
    size_t len = w->subj_off[e] - w->subj_off[s], at = 0;
    uint32_t opts = 0;
    while (at <= len) {
        int rc = pcre2_match(re, subj, len, at, opts | PCRE2_NO_UTF_CHECK, w->match, w->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (!opts)
                break;
            /* after an empty match: step one character and search again */
            at += at < len ? tok_utf8_len_(subj[at]) : 1;
            opts = 0;
            continue;
        }
        if (rc < 0) {
            PCRE2_UCHAR em[128];
            pcre2_get_error_message(rc, em, sizeof em);
            tok_set_msg_(msg, "pre-tokenizer: %s", (const char *)em);
            return rc == PCRE2_ERROR_NOMEMORY ? TOK_ERR_NOMEM : TOK_ERR_LIMIT;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->match);
        size_t cuts[2] = {cpt_at(w, s, e, w->subj_off[s] + ov[0]), cpt_at(w, s, e, w->subj_off[s] + ov[1])};
        for (int k = 0; k < 2; k++) {
            size_t last = *n2 ? w->seg2[*n2 - 1] : 0;
            if (cuts[k] > last && cuts[k] < e) {
                if (!grow((void **)&w->seg2, &w->seg2_cap, *n2 + 1, sizeof *w->seg2))
                    goto nomem;
                w->seg2[(*n2)++] = cuts[k];
            }
        }
        at = ov[1];
        opts = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    }
    return TOK_OK;
nomem:
    tok_set_msg_(msg, "out of memory pre-tokenizing");
    return TOK_ERR_NOMEM;
}

/* The words (pieces) byte-level encoded into w->buf / w->end. */
static bool emit_words(tok_words *w, size_t nc, size_t n_cuts)
{
    size_t need = 0;
    for (size_t i = 0; i < nc; i++) {
        char u[4];
        size_t l = tok_utf8_encode_(w->cpt[i], u);
        for (size_t j = 0; j < l; j++)
            need += byte_cpt((uint8_t)u[j]) < 0x80 ? 1 : 2;
    }
    if (!grow((void **)&w->buf, &w->cap, need + 1, 1) || !grow((void **)&w->end, &w->end_cap, n_cuts + 1, sizeof *w->end))
        return false;
    size_t pos = 0, k = 0;
    w->n = 0;
    for (size_t i = 0; i < nc; i++) {
        if (k < n_cuts && w->seg[k] == i && i > 0) {
            w->end[w->n++] = pos;
            k++;
        }
        char u[4];
        size_t l = tok_utf8_encode_(w->cpt[i], u);
        for (size_t j = 0; j < l; j++)
            pos += tok_byte_to_utf8_((uint8_t)u[j], w->buf + pos);
    }
    if (nc)
        w->end[w->n++] = pos;
    w->len = pos;
    return true;
}

tok_error tok_pretok_split_(const tok_pretok *p, const char *text, size_t len, tok_words *w, char *msg)
{
    size_t nc = 0;
    w->n = w->len = 0;
    if (!w->match) {
        w->match = pcre2_match_data_create(1, NULL);
        w->mctx = pcre2_match_context_create(NULL);
        w->jit_stack = pcre2_jit_stack_create(32 << 10, JIT_STACK_MAX, NULL);
        if (!w->match || !w->mctx || !w->jit_stack)
            goto nomem;
        pcre2_set_match_limit(w->mctx, MATCH_LIMIT);
        pcre2_jit_stack_assign(w->mctx, NULL, w->jit_stack);
    }
    if (!decode(w, text, len, &nc))
        goto nomem;
    /* cut points: interior piece boundaries, ascending (w->seg, n_cuts of them) */
    size_t n_cuts = 0;
    for (size_t r = 0; r < p->n && nc > 0; r++) {
        size_t n2 = 0;
        for (size_t k = 0; k <= n_cuts; k++) {
            size_t s = k ? w->seg[k - 1] : 0, e = k < n_cuts ? w->seg[k] : nc;
            tok_error err = split_piece(p->re[r], w, s, e, &n2, msg);
            if (err)
                return err;
            if (e < nc) { /* the old boundary stays */
                if (!grow((void **)&w->seg2, &w->seg2_cap, n2 + 1, sizeof *w->seg2))
                    goto nomem;
                if (!n2 || w->seg2[n2 - 1] < e)
                    w->seg2[n2++] = e;
            }
        }
        size_t *tmp = w->seg, tc = w->seg_cap;
        w->seg = w->seg2;
        w->seg_cap = w->seg2_cap;
        w->seg2 = tmp;
        w->seg2_cap = tc;
        n_cuts = n2;
    }
    if (!emit_words(w, nc, n_cuts))
        goto nomem;
    return TOK_OK;
nomem:
    tok_set_msg_(msg, "out of memory pre-tokenizing %zu bytes", len);
    return TOK_ERR_NOMEM;
}
