// Fixed test keys for the fuzz targets (private JWKs made for this purpose
// only, never used anywhere else), so that the seed corpus can hold tokens
// that verify and the fuzzer can reach every check after the signature.
#pragma once

namespace keymesh::fuzz {

inline constexpr const char* es256_jwk = R"({"kty": "EC", "crv": "P-256", "x": "TQVBLchaS_pJ-cbYsKWOAVfv20560ggzj1CAx7lYi_Y", "y": "nBsmvcpMJQ7-mlbMtLJN-rHY3mDMHuv31Rgfg1D6ktc", "d": "C3qY2vNXTGe_02zhcgQ-EFIVlj-_QOhfxC3WsbMqkq0"})";
inline constexpr const char* eddsa_jwk = R"({"kty": "OKP", "crv": "Ed25519", "x": "GjuStv3O9ceNyfH09UC4rSd9aGhStFTLxRQSiA7sEMY", "d": "Zn9nKXOEn6vvEfqPVx_Y1zdE0ZPKuSMPG3_fm5jL9dE"})";
inline constexpr const char* rs256_jwk = R"({"kty": "RSA", "n": "4EUslyNwBc2vau_o6L8b6uNZKQCX19WV26iBhw712zUJjYkB2YL4TE5kr9NCG0vDgiapql66encyupLaDhyYfAOJgMdq7VUW8R9J_KBI9ep2rr1PgDKL3VKZsf5pLdAdm6eNd0NQKr-GVmXnOQsiU8NAsxJssL2jbG79usDcmJd-poiW_ycb27JawMI8RUnedUfZ5CjZye4R-6iK1j2uVIIo-xZ7vTwTIqBf7zVXB-VRBD1hzcm_domPetR4R4utU2isGWLDUlhH8nHROHCr24eRbBojsQRrkbh8bGTxc289XCH2YyF7bOz6mv5sySALrV-zFH8UViSz7aILkcbEmw", "e": "AQAB", "d": "AkVBA9C0iCKCdaMzKPQSXMjrdKpQXzuG1l_427yviYYacCfkcGbOi7s5crxBTZRxSMaKbjKiUa4WQeRNt9nbQ1on0Ll0IC392vgVoCyhQHgctn0tKl-Yoed9rdslBnU2b4Z9PKleTOh-fC5w7ldqBA4UgBueJRXuayEeiX79XMAbCOdXhfDhkfvkG7XETi3XOvi_PEz-EB4fnnKcZ7XQrHC43IX_JRN7HIRcF7Lssb1girmas5o5BFdWAlj4hbifLiFY4lXIDWxrqEH1uxtw-AYAADM9is49rppa1Y5fpNGE5LXrhoWwI_TSgcKEjn_Tqi1QdMfvIXQ_BB5WasRw8Q", "p": "_HqGVckrU79tIrtjf6P6pO2uVovxqkbvig_EJ1W8YYdT66gfkXci18UWhNJES0iwjPX4OCLjQu4w43ryuJ8GHh8BOocsYYcJKcWAg8y5VNciMIJah_bRVeTD9__1_w4KsYfMNTq7krVSEp_Y9MYOrNL5MdTfdxuDQ79vuwJPWdE", "q": "42XuaZ07Dc4neWFweqxxNoPxZykOVwRegxIxnKyZEtP5EjWAyRBrV4gvJJdv1Uf0zUa8_f0cpl7tFRFx6EohR-vbYX0e472fVwRijHqBGeBVKgwv_CryRQAWfquhOIskOSwvFIUbxDNHYzkQIDp61RwAA9DujREzfMWxPWvU5qs", "dp": "6gxnFYVMPfF5qTXPMdcAFf4jnCVU3MWvbuvYqaIn5L0_xXhv8zheu2j_zBbjqmpzB-lItjlZNYV7GpWyBgWc9TVGvUvrj2lPzEJDNWsF7ykTj6Z3aA0c16QfKnpEP7Fzpkk9u6Z7la-yqoM16wrjNcDJszEkCtUdZSNE3zZv-tE", "dq": "RyI6u1URBReJJ6JAgk9xNuF9YYzpTHU0b4IAfQdM9yPSFU0hVURKn94dCTBKLojM3m4Tbsx_6tdlCKMlY8nUsV_ph4yRXiKSNrFLdrBXtFWFrpqTZCm3EbieUM-1pi94jF3y-FNPRUfZPAO8tKg2hnW013zDMuO_nHdnI1SZC_M", "qi": "qVaTkfMtEJGigCzSO-Nt879pKUQSYV5wOq5FQXyAj0TbWV2gTphmM98SCVLXk56BOLdrChv5rzOWfxUtxufJ-w4J8x9ov6vFFVY0mcrGBv0wZFmnnURdcQ4li9UFuHvLf-4ZzgI6809wli_PacdsmFvLOPxpGfcci0N3Zdk1xoc"})";

/// The fixed "now" of the JWT target (Unix seconds).
inline constexpr long long fuzz_now = 1700000000;

} // namespace keymesh::fuzz
