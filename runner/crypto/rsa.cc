// RS256 signing with an RSA key read from PEM (PKCS#1 or PKCS#8) through OpenSSL 3's EVP.
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "runner/core/c_handle.h"
#include "runner/crypto/crypto.h"
#include "runner/crypto/openssl_error.h"

namespace runner::crypto {

namespace {

using BioPtr = CHandle<BIO, BIO_free>;
using PkeyPtr = CHandle<EVP_PKEY, EVP_PKEY_free>;
using MdCtxPtr = CHandle<EVP_MD_CTX, EVP_MD_CTX_free>;

// Refuses to prompt for a passphrase (OpenSSL would read the terminal): an encrypted key
// simply fails to load.
int noPassphrase(char*, int, int, void*) { return -1; }

}  // namespace

struct RsaSigningKey::Impl {
  PkeyPtr key;
};

RsaSigningKey::RsaSigningKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RsaSigningKey::RsaSigningKey(RsaSigningKey&&) noexcept = default;
RsaSigningKey& RsaSigningKey::operator=(RsaSigningKey&&) noexcept = default;
RsaSigningKey::~RsaSigningKey() = default;

RsaSigningKey RsaSigningKey::fromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throwOpenSsl("reading a PEM private key");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr));
  if (!key) {
    // The reason names the PEM structure, never its content.
    throw InputError("not an unencrypted PEM private key (" + drainOpenSslErrors() + ")");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA)
    throw InputError("the private key is not an RSA key (RS256 needs RSA)");
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  return RsaSigningKey(std::move(impl));
}

std::string RsaSigningKey::signRs256(std::string_view data) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) throwOpenSsl("allocating a signing context");
  // RSA keys default to PKCS#1 v1.5 padding, which is what RS256 is.
  checkOpenSsl(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()),
               "starting an RS256 signature");
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  checkOpenSsl(EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()),
               "sizing an RS256 signature");
  std::string sig(len, '\0');
  checkOpenSsl(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                              data.size()),
               "computing an RS256 signature");
  sig.resize(len);
  return sig;
}

int RsaSigningKey::bits() const { return EVP_PKEY_get_bits(impl_->key.get()); }

}  // namespace runner::crypto
