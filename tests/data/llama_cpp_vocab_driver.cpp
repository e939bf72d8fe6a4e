// llama.cpp's own tokenizer without the rest of llama.cpp: makes the ids of tests/data/llama_cpp_vectors.json.
// It loads only the vocabulary of a GGUF through llama.cpp's llama_vocab::load (src/llama-vocab.cpp,
// src/unicode.cpp) and prints llama_vocab::tokenize(text, add_special=false, parse_special=false), as
// llama.cpp's tests/test-tokenizer-0 does; llama_model_loader is replaced by the get_key below (the only
// member llama_vocab::load uses besides `metadata`). Build, in the llama.cpp tree of the
// llama-cpp-python==0.3.36 sdist (vendor/llama.cpp; add a ggml-version.h defining GGML_VERSION/GGML_COMMIT):
//   for f in src/llama-vocab.cpp src/unicode.cpp src/unicode-data.cpp src/llama-arch.cpp src/llama-impl.cpp \
//            ggml/src/gguf.cpp llama_cpp_vocab_driver.cpp; do g++ -O1 -std=c++17 -Iinclude -Iggml/include -Isrc -Iggml/src -c $f; done
//   gcc -O1 -std=gnu11 -I. -Iggml/include -Iggml/src -c ggml/src/ggml.c
//   g++ -o driver *.o -lpthread -lm
// with, for the link, a stub `void NAME(void) { abort(); }` (C) for each backend/quantization symbol the linker
// reports undefined, and `void llama_prefetch(llama_memory_ranges) { abort(); }` (C++): none is ever called.
// usage: driver FILE.gguf < docs.bin > ids.txt
// docs.bin: repeated [uint32 little-endian length][utf-8 bytes]; output: one line of ids per text.
#include "llama-model-loader.h"
#include "llama-vocab.h"
#include "llama-arch.h"
#include "gguf.h"

#include <cstdio>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

template<typename T>
bool llama_model_loader::get_key(enum llm_kv kid, T & result, bool required) {
    const std::string key = LLM_KV(LLM_ARCH_UNKNOWN)(kid);
    const int64_t id = gguf_find_key(metadata, key.c_str());
    if (id < 0) {
        if (required) { fprintf(stderr, "missing key %s\n", key.c_str()); abort(); }
        return false;
    }
    const enum gguf_type t = gguf_get_kv_type(metadata, id);
    if constexpr (std::is_same<T, std::string>::value) {
        result = gguf_get_val_str(metadata, id);
    } else if constexpr (std::is_same<T, bool>::value) {
        result = gguf_get_val_bool(metadata, id);
    } else {
        switch (t) {
            case GGUF_TYPE_UINT32: result = (T) gguf_get_val_u32(metadata, id); break;
            case GGUF_TYPE_INT32:  result = (T) gguf_get_val_i32(metadata, id); break;
            case GGUF_TYPE_UINT64: result = (T) gguf_get_val_u64(metadata, id); break;
            case GGUF_TYPE_INT64:  result = (T) gguf_get_val_i64(metadata, id); break;
            case GGUF_TYPE_UINT16: result = (T) gguf_get_val_u16(metadata, id); break;
            case GGUF_TYPE_INT16:  result = (T) gguf_get_val_i16(metadata, id); break;
            case GGUF_TYPE_UINT8:  result = (T) gguf_get_val_u8(metadata, id); break;
            case GGUF_TYPE_INT8:   result = (T) gguf_get_val_i8(metadata, id); break;
            case GGUF_TYPE_BOOL:   result = (T) gguf_get_val_bool(metadata, id); break;
            default: fprintf(stderr, "bad type for %s\n", key.c_str()); abort();
        }
    }
    return true;
}
template bool llama_model_loader::get_key<std::string>(enum llm_kv, std::string &, bool);
template bool llama_model_loader::get_key<bool>(enum llm_kv, bool &, bool);
template bool llama_model_loader::get_key<uint32_t>(enum llm_kv, uint32_t &, bool);
template bool llama_model_loader::get_key<int32_t>(enum llm_kv, int32_t &, bool);
template bool llama_model_loader::get_key<float>(enum llm_kv, float &, bool);

int main(int argc, char ** argv) {
    if (argc < 2) { fprintf(stderr, "usage: driver FILE.gguf\n"); return 2; }
    gguf_init_params params = { /*no_alloc*/ true, /*ctx*/ nullptr };
    gguf_context * ctx = gguf_init_from_file(argv[1], params);
    if (!ctx) { fprintf(stderr, "cannot read %s\n", argv[1]); return 1; }
    // only `metadata` and our get_key are used by llama_vocab::load
    alignas(llama_model_loader) static unsigned char storage[sizeof(llama_model_loader)];
    auto * ml = reinterpret_cast<llama_model_loader *>(storage);
    ml->metadata = ctx;
    llama_vocab vocab;
    vocab.load(*ml, LLM_KV(LLM_ARCH_UNKNOWN));
    std::vector<char> buf;
    uint32_t n;
    while (fread(&n, 4, 1, stdin) == 1) {
        buf.resize(n);
        if (n && fread(buf.data(), 1, n, stdin) != n) { return 3; }
        std::string text(buf.data(), n);
        std::vector<llama_token> ids = vocab.tokenize(text, /*add_special*/ false, /*parse_special*/ false);
        for (size_t i = 0; i < ids.size(); ++i) { printf(i ? " %d" : "%d", ids[i]); }
        printf("\n");
    }
    return 0;
}
