"""LiteSeg: a small encoder-decoder that trains usefully on 2 CPU cores at 128x256.

Output stride 8 with dilated context and a pyramid-pooling branch (PSPNet's idea at small
scale), then a decoder with skips back to 1/2 resolution so thin classes (poles, signs,
lights) survive: an OS-8 head alone loses 3-px-wide objects at this resolution."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, stride=1, dilation=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    def __init__(self, ch, dilation=1):
        super().__init__()
        self.body = nn.Sequential(conv_bn(ch, ch, dilation=dilation),
                                  nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, bias=False),
                                  nn.BatchNorm2d(ch))

    def forward(self, x):
        return F.relu(x + self.body(x))


class LiteSeg(nn.Module):
    def __init__(self, num_classes, width=16):
        super().__init__()
        w = width
        self.stem = nn.Sequential(conv_bn(3, w, stride=2), conv_bn(w, w))                          # 1/2
        self.enc2 = nn.Sequential(conv_bn(w, 2 * w, stride=2), Residual(2 * w))                    # 1/4
        self.enc3 = nn.Sequential(conv_bn(2 * w, 3 * w, stride=2), Residual(3 * w))                # 1/8
        self.context = nn.Sequential(Residual(3 * w, dilation=2), Residual(3 * w, dilation=4))
        self.pool_proj = nn.Sequential(nn.Conv2d(3 * w, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        self.up3 = conv_bn(4 * w + 2 * w, 2 * w)
        self.up2 = conv_bn(2 * w + w, w)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(w, num_classes, 1)

    def backbone_parameters(self):
        return [p for m in (self.stem, self.enc2, self.enc3) for p in m.parameters()]

    def head_parameters(self):
        ids = {id(p) for p in self.backbone_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def forward(self, x):
        size = x.shape[-2:]
        s2 = self.stem(x)
        s4 = self.enc2(s2)
        s8 = self.context(self.enc3(s4))
        pooled = F.interpolate(self.pool_proj(F.adaptive_avg_pool2d(s8, 1)), size=s8.shape[-2:])
        y = torch.cat([s8, pooled], 1)
        y = self.up3(torch.cat([F.interpolate(y, size=s4.shape[-2:], mode="bilinear", align_corners=False), s4], 1))
        y = self.up2(torch.cat([F.interpolate(y, size=s2.shape[-2:], mode="bilinear", align_corners=False), s2], 1))
        out = self.classifier(self.dropout(y))
        return {"out": F.interpolate(out, size=size, mode="bilinear", align_corners=False)}
