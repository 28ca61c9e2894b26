"""A kernel's build configuration: the CONFIG_* options that change what memory hotplug does.

A :class:`KernelPolicy` says what a kernel *version*'s code does; a :class:`KernelConfig` says how
one *build* of it was configured. Two options matter to the model:

- the default online type of hot-added memory blocks (what ``auto_online_blocks`` reads and what
  ``add_memory_resource`` onlines with when no ``memhp_default_state=`` is given):
  ``CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE`` (bool: offline or online) up to 6.11 and in 6.12.0,
  the choice ``CONFIG_MHP_DEFAULT_ONLINE_TYPE_{OFFLINE,ONLINE_AUTO,ONLINE_KERNEL,ONLINE_MOVABLE}``
  in 6.14 and in 6.12.y from 6.12.111 (mm/memory_hotplug.c:mhp_get_default_online_type);
  ``KernelPolicy.default_online_type_kconfig`` says which one a version has;
- ``CONFIG_MHP_MEMMAP_ON_MEMORY`` (mm/Kconfig: def_bool y, depends on MEMORY_HOTPLUG,
  SPARSEMEM_VMEMMAP and ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE): without it the
  ``memory_hotplug.memmap_on_memory`` parameter does not exist (an unknown parameter, ignored) and
  nothing is added with MHP_MEMMAP_ON_MEMORY.

Presets name real distribution builds, read from their packages' ``/boot/config-*``
(:data:`PRESETS`); ``"defconfig"`` is the Kconfig defaults (offline; memmap on memory where the
arch enables it). A Machine with no config takes :data:`DEFAULT_PRESET` for its version: Debian's
build where hotmem is validated against Debian's kernel (6.1, 6.12), the Kconfig defaults elsewhere.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, replace

from hotmem.errors import HotplugError

#: the online types, as auto_online_blocks and memhp_default_state spell them
#: (drivers/base/memory.c:online_type_to_str)
ONLINE_TYPES = ("offline", "online", "online_kernel", "online_movable")

#: CONFIG_MHP_DEFAULT_ONLINE_TYPE_* choice entry -> online type (mhp_get_default_online_type)
_CHOICE = {"OFFLINE": "offline", "ONLINE_AUTO": "online", "ONLINE_KERNEL": "online_kernel",
           "ONLINE_MOVABLE": "online_movable"}


@dataclass(frozen=True)
class KernelConfig:
    """The hotplug-relevant options of one kernel build.

    ``mhp_default_online_type``: one of :data:`ONLINE_TYPES`; ``mhp_memmap_on_memory``:
    CONFIG_MHP_MEMMAP_ON_MEMORY, or None for its Kconfig default (y where the arch selects
    ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE in that version, KernelPolicy.arch)."""

    name: str = "defconfig"
    #: where the values were read
    source: str = "mm/Kconfig defaults"
    mhp_default_online_type: str = "offline"
    mhp_memmap_on_memory: bool | None = None

    def check(self, policy, arch: str) -> "KernelConfig":
        """This config with CONFIG_MHP_MEMMAP_ON_MEMORY resolved for ``arch`` under ``policy``;
        EINVAL for a value the version's Kconfig cannot produce."""
        if self.mhp_default_online_type not in ONLINE_TYPES:
            raise HotplugError(errno.EINVAL, f"config {self.name}: default online type "
                               f"{self.mhp_default_online_type!r} (expected one of "
                               f"{', '.join(ONLINE_TYPES)})")
        if (policy.default_online_type_kconfig == "bool"
                and self.mhp_default_online_type not in ("offline", "online")):
            raise HotplugError(errno.EINVAL, f"config {self.name}: default online type "
                               f"{self.mhp_default_online_type!r} needs "
                               "CONFIG_MHP_DEFAULT_ONLINE_TYPE_*; Linux "
                               f"{policy.name} has only CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE "
                               "(offline or online)")
        enable = policy.arch(arch).mhp_memmap_on_memory_enable
        mom = self.mhp_memmap_on_memory
        if mom is None:
            mom = enable
        elif mom and not enable:
            raise HotplugError(errno.EINVAL, f"config {self.name}: CONFIG_MHP_MEMMAP_ON_MEMORY=y "
                               f"needs ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE, which {arch} does not "
                               f"select in Linux {policy.name}")
        return replace(self, mhp_memmap_on_memory=bool(mom))

    def options(self, policy) -> dict[str, str]:
        """The .config lines of these options as ``policy``'s version spells them
        (value "y", or "is not set")."""
        out = {}
        if policy.default_online_type_kconfig == "choice":
            for key, kind in _CHOICE.items():
                out[f"CONFIG_MHP_DEFAULT_ONLINE_TYPE_{key}"] = \
                    "y" if kind == self.mhp_default_online_type else "is not set"
        else:
            out["CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE"] = \
                "y" if self.mhp_default_online_type == "online" else "is not set"
        if self.mhp_memmap_on_memory is not None:
            out["CONFIG_MHP_MEMMAP_ON_MEMORY"] = "y" if self.mhp_memmap_on_memory else "is not set"
        return out

    def describe(self) -> str:
        mom = {None: "default", True: "y", False: "n"}[self.mhp_memmap_on_memory]
        return f"{self.name}: online={self.mhp_default_online_type}, memmap_on_memory={mom}"


def parse_config(text: str, name: str = "config", source: str = "") -> KernelConfig:
    """A KernelConfig from the text of a kernel .config (``/boot/config-*``): the default online
    type from CONFIG_MHP_DEFAULT_ONLINE_TYPE_* or CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE, and
    CONFIG_MHP_MEMMAP_ON_MEMORY (n when the file does not set it). EINVAL for a .config
    without CONFIG_MEMORY_HOTPLUG=y, or with more than one online type chosen."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            key, _, val = line.partition("=")
            values[key] = val
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            values[line[2:-len(" is not set")]] = "n"
    if values.get("CONFIG_MEMORY_HOTPLUG") != "y":
        raise HotplugError(errno.EINVAL, f"{name}: CONFIG_MEMORY_HOTPLUG is not y")
    chosen = [kind for key, kind in _CHOICE.items()
              if values.get(f"CONFIG_MHP_DEFAULT_ONLINE_TYPE_{key}") == "y"]
    if len(chosen) > 1:
        raise HotplugError(errno.EINVAL, f"{name}: more than one CONFIG_MHP_DEFAULT_ONLINE_TYPE_* "
                           f"is y ({', '.join(chosen)})")
    if chosen:
        online = chosen[0]
    else:
        online = "online" if values.get("CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE") == "y" \
            else "offline"
    return KernelConfig(name=name, source=source or name, mhp_default_online_type=online,
                        mhp_memmap_on_memory=values.get("CONFIG_MHP_MEMMAP_ON_MEMORY") == "y")


DEFCONFIG = KernelConfig()

#: Distribution builds, read from the amd64 packages' /boot/config-* (x86_64):
#: preset name -> kernel version -> KernelConfig.
PRESETS = {
    "defconfig": {},
    "debian": {
        # linux-image-6.1.0-50-amd64-unsigned (6.1.176-1), config-6.1.0-50-amd64:
        # "# CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE is not set", CONFIG_MHP_MEMMAP_ON_MEMORY=y
        "6.1": KernelConfig(name="debian", source="Debian 12 linux-image-6.1.0-50-amd64-unsigned "
                            "(6.1.176-1) /boot/config-6.1.0-50-amd64",
                            mhp_default_online_type="offline", mhp_memmap_on_memory=True),
        # linux-image-6.12.118+deb13-amd64-unsigned (6.12.118-1), config-6.12.118+deb13-amd64:
        # CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO=y (the other three "is not set"),
        # CONFIG_MHP_MEMMAP_ON_MEMORY=y
        "6.12": KernelConfig(name="debian", source="Debian 13 linux-image-6.12.118+deb13-amd64-"
                             "unsigned (6.12.118-1) /boot/config-6.12.118+deb13-amd64",
                             mhp_default_online_type="online", mhp_memmap_on_memory=True),
    },
}

#: kernel version -> the preset a Machine of that version takes by default
DEFAULT_PRESET = {"6.1": "debian", "6.12": "debian"}


def get_config(config, policy, arch: str = "x86_64") -> KernelConfig:
    """The KernelConfig a Machine runs with, checked against ``policy`` and ``arch``.

    ``config``: None (the version's default: :data:`DEFAULT_PRESET`, else defconfig), a preset
    name ("debian", "defconfig"), a KernelConfig, or a mapping of its fields
    (``{"mhp_default_online_type": "online"}``). A preset that has no build of ``policy``'s
    version is refused with EINVAL; a distribution preset is refused for another arch than
    x86_64 (only amd64 builds were read)."""
    if config is None:
        config = DEFAULT_PRESET.get(policy.name, "defconfig")
        if config != "defconfig" and arch != "x86_64":
            config = "defconfig"
    if isinstance(config, dict):
        unknown = set(config) - {"name", "source", "mhp_default_online_type",
                                 "mhp_memmap_on_memory"}
        if unknown:
            raise HotplugError(errno.EINVAL, f"config: unknown option(s) {sorted(unknown)}")
        config = KernelConfig(**{"name": "custom", "source": "given", **config})
    if isinstance(config, str):
        if config not in PRESETS:
            raise HotplugError(errno.EINVAL, f"config {config!r} is not a preset "
                               f"(known: {', '.join(PRESETS)})")
        if config == "defconfig":
            config = DEFCONFIG
        else:
            builds = PRESETS[config]
            if policy.name not in builds:
                raise HotplugError(errno.EINVAL, f"config {config!r} has no build of Linux "
                                   f"{policy.name} (known: {', '.join(builds)})")
            if arch != "x86_64":
                raise HotplugError(errno.EINVAL, f"config {config!r}: only its amd64 builds "
                                   f"were read, not {arch}'s")
            config = builds[policy.name]
    if not isinstance(config, KernelConfig):
        raise HotplugError(errno.EINVAL, f"config {config!r}: expected a preset name, a "
                           "KernelConfig or a mapping")
    return config.check(policy, arch)
