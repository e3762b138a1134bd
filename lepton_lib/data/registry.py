"""Every data file the book uses: where it canonically lives and its sha256.

Each file is pinned to a commit of its public source repository, so the bytes
never change under the book; ``../shared/data/*/SOURCE.md`` documents each
origin, licence and citation. Datasets with stricter terms (MovieLens) are
downloaded from their owner's site by their own loader.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RemoteFile", "REGISTRY"]


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file: ``name`` is its path below the data directory."""

    name: str
    url: str
    sha256: str


def _github(name: str, repo: str, commit: str, path: str, sha256: str) -> RemoteFile:
    return RemoteFile(name, f"https://raw.githubusercontent.com/{repo}/{commit}/{path}", sha256)


_FILES = [
    _github("cora/ind.cora.allx", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.allx", "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543"),
    _github("cora/ind.cora.ally", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.ally", "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71"),
    _github("cora/ind.cora.graph", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.graph", "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d"),
    _github("cora/ind.cora.test.index", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.test.index", "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875"),
    _github("cora/ind.cora.tx", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.tx", "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a"),
    _github("cora/ind.cora.ty", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.ty", "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad"),
    _github("cora/ind.cora.x", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.x", "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab"),
    _github("cora/ind.cora.y", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.cora.y", "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1"),
    _github("citeseer/ind.citeseer.allx", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.allx", "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668"),
    _github("citeseer/ind.citeseer.ally", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.ally", "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95"),
    _github("citeseer/ind.citeseer.graph", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.graph", "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7"),
    _github("citeseer/ind.citeseer.test.index", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.test.index", "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4"),
    _github("citeseer/ind.citeseer.tx", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.tx", "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21"),
    _github("citeseer/ind.citeseer.ty", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.ty", "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce"),
    _github("citeseer/ind.citeseer.x", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.x", "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6"),
    _github("citeseer/ind.citeseer.y", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.citeseer.y", "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924"),
    _github("pubmed/ind.pubmed.ally", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.pubmed.ally", "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e"),
    _github("pubmed/ind.pubmed.graph", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.pubmed.graph", "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9"),
    _github("pubmed/ind.pubmed.test.index", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.pubmed.test.index", "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5"),
    _github("pubmed/ind.pubmed.tx", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.pubmed.tx", "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d"),
    _github("pubmed/ind.pubmed.ty", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.pubmed.ty", "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd"),
    _github("pubmed/ind.pubmed.x", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.pubmed.x", "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33"),
    _github("pubmed/ind.pubmed.y", "kimiyoung/planetoid", "af6abf468a772cc055bec88c52e4d6f51b7c37e3", "data/ind.pubmed.y", "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3"),
    _github("tiny_shakespeare/input.txt", "karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e", "data/tinyshakespeare/input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    _github("wikitext2/test.txt", "pytorch/examples", "77f55b912142e11fcfdf5b530231fb9c52f181e8", "word_language_model/data/wikitext-2/test.txt", "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
    _github("wikitext2/valid.txt", "pytorch/examples", "77f55b912142e11fcfdf5b530231fb9c52f181e8", "word_language_model/data/wikitext-2/valid.txt", "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
    _github("sst2/dev.tsv", "eyalbd2/Reproducing-AutoPrompt", "6288fb5bec9c572f2492875ae0111df5b6daed11", "glue_data/SST-2/dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0"),
    _github("sst2/test.tsv", "eyalbd2/Reproducing-AutoPrompt", "6288fb5bec9c572f2492875ae0111df5b6daed11", "glue_data/SST-2/test.tsv", "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13"),
    _github("sst2/train.tsv", "eyalbd2/Reproducing-AutoPrompt", "6288fb5bec9c572f2492875ae0111df5b6daed11", "glue_data/SST-2/train_full.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"),
    _github("mr_sentence_polarity/rt-polarity.neg", "yoonkim/CNN_sentence", "23e0e1f7355705bb083043fda05c031b15acb38c", "rt-polarity.neg", "4ace77d558c3714723843f1d65b60c01e3417b208180f0728808d76ad0eeeaca"),
    _github("mr_sentence_polarity/rt-polarity.pos", "yoonkim/CNN_sentence", "23e0e1f7355705bb083043fda05c031b15acb38c", "rt-polarity.pos", "2da124ec187a9d5a29c9f04e91c540e02baed5af8868f550a26bd6fd4dbf8bf0"),
    _github("german_credit/Index", "DorantVelija/statlog-credit-data", "11183c51029f2ae4e549261b06e8b0df9b7a1945", "statlog+german+credit+data/Index", "30cd5a2ef694f379fd65e5835ffd0f8405d6c225c3711a8cc0c8e12f55501e91"),
    _github("german_credit/german.data", "DorantVelija/statlog-credit-data", "11183c51029f2ae4e549261b06e8b0df9b7a1945", "german.data", "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871"),
    _github("german_credit/german.data-numeric", "DorantVelija/statlog-credit-data", "11183c51029f2ae4e549261b06e8b0df9b7a1945", "german.data-numeric", "2752b044394958ab6dd193a0b56ca0f0b3a2d8bc7cb8c008e35a5e84bbec02f8"),
    _github("german_credit/german.doc", "DorantVelija/statlog-credit-data", "11183c51029f2ae4e549261b06e8b0df9b7a1945", "german.doc", "69b92cb551111bc37098698288849c96f0fd87ce81a2e54451ff39aa1e53fe49"),
]

# MNIST (LeCun et al. 1998, doi:10.1109/5.726791): the four IDX files of the original distribution
# (yann.lecun.com/exdb/mnist/), from the mirror torchvision downloads them from.
_MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist"
_FILES += [
    RemoteFile(f"mnist/{name}", f"{_MNIST_MIRROR}/{name}", sha256) for name, sha256 in (
        ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    )
]

# BANKING77 (Casanueva et al. 2020, arXiv:2003.04807; CC BY 4.0): 77 intents of online-banking queries.
_FILES += [
    _github(f"banking77/{name}", "PolyAI-LDN/task-specific-datasets", "57ec275d8078af65b7731c2a98be812d844a6d6b",
            f"banking_data/{name}", sha256) for name, sha256 in (
        ("train.csv", "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b"),
        ("test.csv", "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d"),
        ("categories.json", "53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63"),
    )
]

REGISTRY: dict[str, RemoteFile] = {f.name: f for f in _FILES}
