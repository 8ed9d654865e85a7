// CStrataMbedTLS: the system mbedTLS (Debian's libmbedtls-dev 2.28) as one Clang module.
//
// Nothing here but includes and compile-time checks: StrataTLS is written against the
// semantics of mbedTLS 2.28 (TLS 1.2, the 2.x struct layout, the 2.x config names), and a
// different build must fail to compile here, loudly, rather than link and misbehave.
// docs/tls.md says what moving to mbedTLS 3.6 (TLS 1.3) changes.
#ifndef C_STRATA_MBEDTLS_H
#define C_STRATA_MBEDTLS_H

#if !defined(MBEDTLS_CONFIG_FILE)
#include <mbedtls/config.h>
#else
#include MBEDTLS_CONFIG_FILE
#endif
#include <mbedtls/version.h>

// --- Version: the 2.28 LTS branch, nothing else. ------------------------------------------
#if !defined(MBEDTLS_VERSION_NUMBER) || MBEDTLS_VERSION_NUMBER < 0x021C0000 || MBEDTLS_VERSION_NUMBER >= 0x021D0000
#error "StrataTLS needs mbedTLS 2.28.x (Debian 12: apt-get install libmbedtls-dev). mbedTLS 3.x changes the API and struct layout: see docs/tls.md, 'Moving to mbedTLS 3.6'."
#endif

// --- Config options the module relies on. ---------------------------------------------------

#if !defined(MBEDTLS_SSL_TLS_C) || !defined(MBEDTLS_SSL_SRV_C) || !defined(MBEDTLS_SSL_CLI_C)
#error "StrataTLS needs MBEDTLS_SSL_TLS_C, MBEDTLS_SSL_SRV_C and MBEDTLS_SSL_CLI_C (servers and clients)."
#endif
#if !defined(MBEDTLS_SSL_PROTO_TLS1_2)
#error "StrataTLS needs MBEDTLS_SSL_PROTO_TLS1_2: TLS 1.2 is its only protocol version."
#endif
#if !defined(MBEDTLS_X509_CRT_PARSE_C) || !defined(MBEDTLS_PEM_PARSE_C) || !defined(MBEDTLS_PK_PARSE_C)
#error "StrataTLS needs MBEDTLS_X509_CRT_PARSE_C, MBEDTLS_PEM_PARSE_C and MBEDTLS_PK_PARSE_C (PEM certificates and keys)."
#endif
#if !defined(MBEDTLS_HAVE_TIME_DATE)
#error "StrataTLS needs MBEDTLS_HAVE_TIME_DATE: without it mbedTLS never checks certificate validity dates."
#endif
#if !defined(MBEDTLS_X509_CHECK_KEY_USAGE) || !defined(MBEDTLS_X509_CHECK_EXTENDED_KEY_USAGE)
#error "StrataTLS needs MBEDTLS_X509_CHECK_KEY_USAGE and MBEDTLS_X509_CHECK_EXTENDED_KEY_USAGE (key usage is part of verification)."
#endif
#if !defined(MBEDTLS_CTR_DRBG_C) || !defined(MBEDTLS_ENTROPY_C)
#error "StrataTLS needs MBEDTLS_CTR_DRBG_C and MBEDTLS_ENTROPY_C (its random generator)."
#endif
#if !defined(MBEDTLS_THREADING_C) || !defined(MBEDTLS_THREADING_PTHREAD)
#error "StrataTLS needs MBEDTLS_THREADING_C with MBEDTLS_THREADING_PTHREAD: one configuration (its DRBG, ticket keys and session cache) is shared by connections on several threads."
#endif
#if !defined(MBEDTLS_GCM_C) || !defined(MBEDTLS_AES_C)
#error "StrataTLS needs MBEDTLS_GCM_C and MBEDTLS_AES_C: its default suites are AES-GCM."
#endif
#if !defined(MBEDTLS_ECDH_C) || !defined(MBEDTLS_ECDSA_C) || !defined(MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED) || !defined(MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED)
#error "StrataTLS needs ECDHE-ECDSA and ECDHE-RSA key exchanges (forward secrecy only)."
#endif
#if !defined(MBEDTLS_ECP_DP_SECP256R1_ENABLED) || !defined(MBEDTLS_ECP_DP_SECP384R1_ENABLED) || !defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
#error "StrataTLS needs the curves X25519, P-256 and P-384."
#endif
#if !defined(MBEDTLS_SSL_ALPN) || !defined(MBEDTLS_SSL_SERVER_NAME_INDICATION)
#error "StrataTLS needs MBEDTLS_SSL_ALPN and MBEDTLS_SSL_SERVER_NAME_INDICATION."
#endif
#if !defined(MBEDTLS_SSL_SESSION_TICKETS) || !defined(MBEDTLS_SSL_TICKET_C)
#error "StrataTLS needs MBEDTLS_SSL_SESSION_TICKETS and MBEDTLS_SSL_TICKET_C (session resumption)."
#endif
#if !defined(MBEDTLS_ERROR_C)
#error "StrataTLS needs MBEDTLS_ERROR_C: every TLSError carries mbedTLS's own text."
#endif
#if !defined(MBEDTLS_SSL_EXTENDED_MASTER_SECRET)
#error "StrataTLS needs MBEDTLS_SSL_EXTENDED_MASTER_SECRET (RFC 7627)."
#endif
#if defined(MBEDTLS_SSL_IN_CONTENT_LEN) && MBEDTLS_SSL_IN_CONTENT_LEN != 16384
#error "StrataTLS's memory accounting (docs/tls.md) assumes 16 KiB record buffers."
#endif
#if defined(MBEDTLS_ECP_RESTARTABLE)
#error "StrataTLS was measured without MBEDTLS_ECP_RESTARTABLE; review the handshake scheduling (docs/tls.md) before enabling it."
#endif

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/ssl_cache.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/pk.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/debug.h>

/// MBEDTLS_VERSION_NUMBER (a macro Swift imports, kept as a constant for clarity).
static const int strata_mbedtls_version_number = MBEDTLS_VERSION_NUMBER;

/// The record buffer lengths mbedtls_ssl_setup allocates (expression macros Swift cannot
/// import): StrataTLS replaces those buffers with page-aligned ones of at least this size.
static inline size_t strata_ssl_in_buffer_len(void) { return MBEDTLS_SSL_IN_BUFFER_LEN; }
static inline size_t strata_ssl_out_buffer_len(void) { return MBEDTLS_SSL_OUT_BUFFER_LEN; }

#endif
