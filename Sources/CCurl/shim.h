#include <curl/curl.h>
#include <stdio.h>

// curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call: one typed wrapper each.
static inline CURLcode hl_curl_setopt_long(CURL *curl, CURLoption option, long value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode hl_curl_setopt_offset(CURL *curl, CURLoption option, curl_off_t value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode hl_curl_setopt_pointer(CURL *curl, CURLoption option, void *value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode hl_curl_setopt_string(CURL *curl, CURLoption option, const char *value) { return curl_easy_setopt(curl, option, value); }
static inline CURLcode hl_curl_setopt_progress(CURL *curl, curl_xferinfo_callback callback) { return curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, callback); }
static inline CURLcode hl_curl_response_code(CURL *curl, long *code) { return curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code); }

// Macros with casts, which Swift does not import.
static const long HL_CURLAUTH_BASIC = (long)CURLAUTH_BASIC;
static const long HL_CURLSSH_AUTH_PUBLICKEY = (long)CURLSSH_AUTH_PUBLICKEY;
static const long HL_CURLSSH_AUTH_PASSWORD = (long)(CURLSSH_AUTH_PASSWORD | CURLSSH_AUTH_KEYBOARD);
