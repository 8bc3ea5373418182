// Command vcsim-virtplane runs the govmomi vSphere simulator for virtplane's lab and tests.
//
// It serves the SDK over TLS with a freshly generated P-256 certificate (written to -cert-out, so
// clients verify against it), seeds every host with realistic, heterogeneous hardware-assist facts,
// and prints one JSON line with the URL once it is ready.
//
// Topology: datacenter DC0, cluster DC0_C0 with -hosts hosts DC0_C0_H0…, datastores LocalDS_0…,
// distributed switch DC0_DVS with port group DC0_DVPG0.
//
// Hardware, by host index i (DC0_C0_H<i>), profile i % 4; every host has -pci-per-host devices
// (default 8): the profile's own devices, then chipset, RAID, 1 GbE and NVMe fillers.
//
//	i%4  ESXi (newest vmx)  CPU (CPUID)                 VT-x/AMD-V       SLAT  nested  GPU (passthrough)                SR-IOV NIC (VFs/max)            vGPU types (graphics)
//	0    8.0 U2 (vmx-21)    Xeon Gold 6338 (Intel)      VMX on           yes   yes     A100 80GB capable+enabled        X710 enabled 8/64               grid_a100-{4,10,20,40}c (both A100s
//	                                                                                   + L4 capable+enabled                                             sharedDirect, 80 GB each, a 20 GB vGPU
//	                                                                                   + 2nd A100 80GB capable+enabled                                  running on each; L4 direct)
//	1    7.0 U2 (vmx-19)    EPYC 7763 (AMD)             SVM on           yes   yes     A100 40GB capable, NOT enabled   ConnectX-6 Dx not enabled 0/127 grid_a100-{1-5,2-10,3-20,7-40}c (shared)
//	                                                                                   + A10 enabled, claimed by a powered-off Dynamic DirectPath VM
//	                                                                                   + A30 enabled, not active until the host reboots
//	2    6.7 U3 (vmx-15)    Xeon Silver 4210R (Intel)   VMX on, disabled no    no      none                             none                            none; no device passthrough capable
//	                                                    in the BIOS
//	3    7.0 (vmx-17)       EPYC 9354 (AMD)             no regs          unset yes     none                             E810 enabled 32/256             none
//
// Every host has a non-nil capability (a nil one crashes property reads in govmomi 0.24); profile 3
// leaves cpuHwMmuSupported unset and reports no CPUID registers, so SLAT and VT-x/AMD-V read as
// unknown (nestedHVSupported is a required boolean in the API: clients read an unset one as false).
// Profile 2 has VT-x disabled in the BIOS: CPUID still shows VMX (the firmware locks it off in an MSR,
// CPUID does not change), and the host says so in capability.ftCompatibilityIssues (cpuHvDisabled), as
// ESXi reports hosts that cannot run FT (vSphere API HostCapabilityFtUnsupportedReason).
// Profile 0 mixes a DirectPath-enabled GPU with vGPU profiles on purpose, so one host answers "yes"
// to both kinds of request (real vGPU needs the GPU out of passthrough); its L4, enabled for
// passthrough, can be given whole while the A100s serve vGPU instances (the lab's passthrough VM). Its
// two A100 80GB (0000:3b:00.0 and 0000:d8:00.0: a PowerEdge R750xa holds up to four double-width
// GPUs) are both in Shared Direct and each runs another team's 20 GB vGPU (vdi-pool-3, vdi-pool-4),
// so in equal-size mode each takes only 20 GB vGPUs: six free, for the lab's vGPU workstation and
// four desktops.
// NVMe and USB fillers are passthrough capable on profiles 0, 1 and 3 (IOMMU on), nothing is on
// profile 2. IDs are signed shorts in the API (0x8086 is -32634). The chipset fillers are Intel's on
// every host.
//
// VMs held by others (unless -device-vms=false): on DC0_C0_H0 "vdi-pool-3" and "vdi-pool-4", powered on
// with a 20 GB vGPU (grid_a100-20c) each that config.graphicsInfo[].vm lists on the first and on the second
// A100; on DC0_C0_H1 "render-farm-7",
// powered off with a Dynamic DirectPath I/O device allowing the A10: it holds no device until it
// powers on, when vSphere gives it a free A10 (vSphere VM Administration, "PCI devices").
// The cluster's EnvironmentBrowser answers QueryConfigOptionDescriptor with every hardware version
// from vmx-13 to vmx-21 and, for each, the hosts whose release creates it (as vCenter does for a
// cluster of mixed releases; the simulator's own answer names every host for vmx-13 only).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	hosts := flag.Int("hosts", 3, "hosts in the cluster")
	vms := flag.Int("vms", 0, "VMs to create in the cluster")
	datastores := flag.Int("datastores", 1, "datastores")
	delay := flag.Int("delay-ms", 0, "latency added to every SOAP call, in milliseconds")
	jitter := flag.Float64("delay-jitter", 0, "latency jitter as coefficient of variation")
	certOut := flag.String("cert-out", "", "write the server certificate (PEM) here")
	user := flag.String("user", "virtplane", "login user name")
	passFile := flag.String("password-file", "", "file holding the login password")
	owner := flag.String("own-vms", "", "mark seeded VMs as owned by this stack (benchmarks)")
	pciPerHost := flag.Int("pci-per-host", 8, "PCI devices per host (the profile's GPU and NIC, then chipset fillers)")
	deviceVMs := flag.Bool("device-vms", true, "seed the VMs other teams run on the lab's GPUs (see the top)")
	flag.Parse()

	password := "virtplane"
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			log.Fatalf("reading password file: %v", err)
		}
		password = strings.TrimSpace(string(b))
	}

	model := simulator.VPX()
	model.Host = 0
	model.Cluster = 1
	model.ClusterHost = *hosts
	model.Machine = *vms
	model.Datastore = *datastores
	model.Portgroup = 1
	model.DelayConfig.Delay = *delay
	model.DelayConfig.DelayJitter = *jitter
	if err := model.Create(); err != nil {
		log.Fatalf("creating model: %v", err)
	}
	defer model.Remove()

	seedHosts(*pciPerHost)
	seedHardwareVersions()
	if *owner != "" {
		markOwned(*owner) // the -vms VMs only: the device VMs below are other teams'
	}
	if *deviceVMs {
		if err := seedDeviceVMs(model.Service); err != nil {
			log.Fatalf("seeding device VMs: %v", err)
		}
	}

	cert, err := selfSigned()
	if err != nil {
		log.Fatalf("certificate: %v", err)
	}
	if *certOut != "" {
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		if err := os.WriteFile(*certOut, pemBytes, 0o644); err != nil {
			log.Fatalf("writing certificate: %v", err)
		}
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, password)}
	server := model.Service.NewServer()
	defer server.Close()

	ready, _ := json.Marshal(map[string]interface{}{
		"url": "https://" + server.URL.Host + "/sdk", "host": server.URL.Host, "pid": os.Getpid(),
	})
	fmt.Println(string(ready))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// selfSigned makes a P-256 certificate for 127.0.0.1 and localhost that can serve as its own CA.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "virtplane lab vcsim"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// seedHosts gives every host the hardware-assist facts a real ESXi host reports, deterministically by
// its index (the number after "_H" in its name): the profile is index % 4 (see the table at the top).
// Every host gets a non-nil Capability: a nil one crashes property reads in this govmomi version.
func seedHosts(pciPerHost int) {
	for _, entity := range simulator.Map.All("HostSystem") {
		host := entity.(*simulator.HostSystem)
		seedHost(host, profiles[hostIndex(host.Name)%len(profiles)], pciPerHost)
	}
}

// hostIndex is the number after the last "_H" of a host name (DC0_C0_H2 -> 2), 0 when there is none.
func hostIndex(name string) int {
	at := strings.LastIndex(name, "_H")
	if at < 0 {
		return 0
	}
	index, err := strconv.Atoi(name[at+2:])
	if err != nil {
		return 0
	}
	return index
}

// cpu is one processor model: what cpuPkg, summary.hardware and the CPUID registers say about it.
type cpu struct {
	vendor      string // "intel" or "amd"
	model       string
	mhz         int32
	cores       int16 // per package
	leaf1ECX    uint32
	ext1ECX     uint32 // leaf 0x80000001
	noRegisters bool   // report no CPUID registers at all (facts derived from them stay unknown)
}

// profile is the hardware of one kind of host.
type profile struct {
	name           string
	server         [2]string // summary.hardware vendor, model
	release        [2]string // ESXi version, build (summary.config.product)
	vmx            int       // the newest hardware version the release creates (VMware KB 1003746)
	cpu            cpu
	ftIssues       []string // capability.ftCompatibilityIssues
	memoryGiB      int64
	usedMiB        int32
	nested, hwMmu  *bool
	directPathGen2 *bool
	special        []types.HostPciDevice           // devices this profile is about (GPU, SR-IOV NIC)
	passthru       []types.BaseHostPciPassthruInfo // their passthrough state
	iommu          bool                            // fillers are passthrough capable (NVMe, USB) when true
	gpuTypes       []string
	graphics       []graphics // config.graphicsInfo: one entry per graphics device
}

// graphics is one config.graphicsInfo entry: a GPU's graphics type and frame buffer.
type graphics struct {
	device    types.HostPciDevice
	kind      types.HostGraphicsInfoGraphicsType
	memoryGiB int64
}

const (
	intelVendor  = -32634 // 0x8086 as the API's signed short
	nvidiaA100   = 0x20b5 // A100 PCIe 80GB
	nvidiaA10040 = 0x20f1 // A100 PCIe 40GB
	nvidiaL4     = 0x27b8 // L4
	nvidiaA10    = 0x2236 // A10
	nvidiaA30    = 0x20b7 // A30
)

var (
	a100x80 = types.HostPciDevice{
		Id: "0000:3b:00.0", ClassId: 0x0302, Bus: 0x3b, VendorId: 0x10de, DeviceId: nvidiaA100,
		SubVendorId: 0x10de, SubDeviceId: 0x1533, VendorName: "NVIDIA Corporation",
		DeviceName: "GA100 [A100 PCIe 80GB]",
	}
	a100x40 = types.HostPciDevice{
		Id: "0000:41:00.0", ClassId: 0x0302, Bus: 0x41, VendorId: 0x10de, DeviceId: nvidiaA10040,
		SubVendorId: 0x10de, SubDeviceId: 0x145f, VendorName: "NVIDIA Corporation",
		DeviceName: "GA100 [A100 PCIe 40GB]",
	}
	a100x80b = types.HostPciDevice{ // a second A100 80GB in the same host, in another slot
		Id: "0000:d8:00.0", ClassId: 0x0302, Bus: 0xd8, VendorId: 0x10de, DeviceId: nvidiaA100,
		SubVendorId: 0x10de, SubDeviceId: 0x1533, VendorName: "NVIDIA Corporation",
		DeviceName: "GA100 [A100 PCIe 80GB]",
	}
	l4 = types.HostPciDevice{
		Id: "0000:af:00.0", ClassId: 0x0302, Bus: 0xaf, VendorId: 0x10de, DeviceId: nvidiaL4,
		SubVendorId: 0x10de, SubDeviceId: 0x16ca, VendorName: "NVIDIA Corporation",
		DeviceName: "AD104GL [L4]",
	}
	a10 = types.HostPciDevice{
		Id: "0000:61:00.0", ClassId: 0x0302, Bus: 0x61, VendorId: 0x10de, DeviceId: nvidiaA10,
		SubVendorId: 0x10de, SubDeviceId: 0x1482, VendorName: "NVIDIA Corporation",
		DeviceName: "GA102GL [A10]",
	}
	a30 = types.HostPciDevice{
		Id: "0000:a1:00.0", ClassId: 0x0302, Bus: 0xa1, VendorId: 0x10de, DeviceId: nvidiaA30,
		SubVendorId: 0x10de, SubDeviceId: 0x1532, VendorName: "NVIDIA Corporation",
		DeviceName: "GA100GL [A30 PCIe]",
	}
	x710 = types.HostPciDevice{
		Id: "0000:5e:00.0", ClassId: 0x0200, Bus: 0x5e, VendorId: intelVendor, DeviceId: 0x1572,
		SubVendorId: intelVendor, SubDeviceId: 0x0006, VendorName: "Intel Corporation",
		DeviceName: "Ethernet Controller X710 for 10GbE SFP+",
	}
	connectx6 = types.HostPciDevice{
		Id: "0000:c1:00.0", ClassId: 0x0200, Bus: 0xc1, VendorId: 0x15b3, DeviceId: 0x101d,
		SubVendorId: 0x15b3, SubDeviceId: 0x0016, VendorName: "Mellanox Technologies",
		DeviceName: "MT2892 Family [ConnectX-6 Dx]",
	}
	e810 = types.HostPciDevice{
		Id: "0000:98:00.0", ClassId: 0x0200, Bus: 0x98, VendorId: intelVendor, DeviceId: 0x159b,
		SubVendorId: intelVendor, SubDeviceId: 0x0003, VendorName: "Intel Corporation",
		DeviceName: "Ethernet Controller E810-C for SFP",
	}

	profiles = []profile{
		{
			name: "gpu-passthrough", server: [2]string{"Dell Inc.", "PowerEdge R750xa"},
			release: [2]string{"8.0.2", "22380479"}, vmx: 21,
			cpu: cpu{vendor: "intel", model: "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", mhz: 2000, cores: 32,
				leaf1ECX: 0x7ffefbff, ext1ECX: 0x00000121},
			memoryGiB: 512, usedMiB: 98304,
			nested: types.NewBool(true), hwMmu: types.NewBool(true), directPathGen2: types.NewBool(true),
			special: []types.HostPciDevice{a100x80, x710, l4, a100x80b},
			passthru: []types.BaseHostPciPassthruInfo{
				passthru(a100x80, true, true, true),
				sriov(x710, true, 8, 64),
				passthru(l4, true, true, true),
				passthru(a100x80b, true, true, true),
			},
			iommu:    true,
			gpuTypes: []string{"grid_a100-4c", "grid_a100-10c", "grid_a100-20c", "grid_a100-40c"},
			graphics: []graphics{{a100x80, types.HostGraphicsInfoGraphicsTypeSharedDirect, 80},
				{l4, types.HostGraphicsInfoGraphicsTypeDirect, 24},
				{a100x80b, types.HostGraphicsInfoGraphicsTypeSharedDirect, 80}},
		},
		{
			name: "gpu-not-enabled", server: [2]string{"Supermicro", "AS -2124GQ-NART"},
			release: [2]string{"7.0.2", "17630552"}, vmx: 19,
			cpu: cpu{vendor: "amd", model: "AMD EPYC 7763 64-Core Processor", mhz: 2450, cores: 64,
				leaf1ECX: 0x7ef8320b, ext1ECX: 0x75c237ff},
			memoryGiB: 1024, usedMiB: 262144,
			nested: types.NewBool(true), hwMmu: types.NewBool(true), directPathGen2: types.NewBool(false),
			special: []types.HostPciDevice{a100x40, connectx6, a10, a30},
			passthru: []types.BaseHostPciPassthruInfo{
				passthru(a100x40, true, false, false),
				sriov(connectx6, false, 0, 127),
				passthru(a10, true, true, true),
				passthru(a30, true, true, false), // enabled, active only after the host reboots
			},
			iommu:    true,
			gpuTypes: []string{"grid_a100-1-5c", "grid_a100-2-10c", "grid_a100-3-20c", "grid_a100-7-40c"},
			graphics: []graphics{{a100x40, types.HostGraphicsInfoGraphicsTypeShared, 40},
				{a10, types.HostGraphicsInfoGraphicsTypeDirect, 24}, {a30, types.HostGraphicsInfoGraphicsTypeDirect, 24}},
		},
		{
			name: "plain", server: [2]string{"HPE", "ProLiant DL360 Gen10"},
			release: [2]string{"6.7.0", "14320388"}, vmx: 15, // 6.7 Update 3
			cpu: cpu{vendor: "intel", model: "Intel(R) Xeon(R) Silver 4210R CPU @ 2.40GHz", mhz: 2400, cores: 10,
				leaf1ECX: 0x7ffefbff, ext1ECX: 0x00000121}, // VMX (bit 5) set: CPUID does not tell it is disabled
			ftIssues: []string{string(types.HostCapabilityFtUnsupportedReasonCpuHvDisabled),
				string(types.HostCapabilityFtUnsupportedReasonCpuHwmmuUnsupported)},
			memoryGiB: 128, usedMiB: 16384,
			nested: types.NewBool(false), hwMmu: types.NewBool(false), directPathGen2: types.NewBool(false),
		},
		{
			name: "sriov-unknown-cpu", server: [2]string{"Lenovo", "ThinkSystem SR645 V3"},
			release: [2]string{"7.0.0", "15843807"}, vmx: 17,
			cpu: cpu{vendor: "amd", model: "AMD EPYC 9354 32-Core Processor", mhz: 3250, cores: 32,
				noRegisters: true},
			memoryGiB: 768, usedMiB: 65536,
			nested: types.NewBool(true), directPathGen2: types.NewBool(true), // cpuHwMmuSupported left unset
			special:  []types.HostPciDevice{e810},
			passthru: []types.BaseHostPciPassthruInfo{sriov(e810, true, 32, 256)},
			iommu:    true,
		},
	}

	// fillers complete every host's device list up to -pci-per-host: chipset functions, a RAID
	// controller and NVMe drives (class ids are class<<8 | subclass).
	fillers = []types.HostPciDevice{
		filler("0000:00:00.0", 0x0600, 0x8086, 0x09a2, "Intel Corporation", "Ice Lake Memory Map/VT-d"),
		filler("0000:00:14.0", 0x0c03, 0x8086, 0xa1af, "Intel Corporation", "C620 Series Chipset USB 3.0 xHCI Controller"),
		filler("0000:00:17.0", 0x0106, 0x8086, 0xa182, "Intel Corporation", "C620 Series Chipset SATA Controller [AHCI mode]"),
		filler("0000:00:1f.4", 0x0c05, 0x8086, 0xa1a3, "Intel Corporation", "C620 Series Chipset SMBus"),
		filler("0000:17:00.0", 0x0104, 0x1000, 0x10e2, "Broadcom / LSI", "MegaRAID 12GSAS/PCIe Secure SAS39xx"),
		filler("0000:01:00.0", 0x0200, 0x8086, 0x1521, "Intel Corporation", "I350 Gigabit Network Connection"),
	}
)

// filler is a plain device; ids are given as the hardware has them and stored as the API's signed shorts.
func filler(id string, class, vendor, device uint16, vendorName, deviceName string) types.HostPciDevice {
	var bus, slot, function byte
	_, _ = fmt.Sscanf(id, "0000:%x:%x.%x", &bus, &slot, &function)
	return types.HostPciDevice{Id: id, ClassId: int16(class), Bus: bus, Slot: slot, Function: function,
		VendorId: int16(vendor), DeviceId: int16(device), SubVendorId: int16(vendor), VendorName: vendorName,
		DeviceName: deviceName}
}

// nvme is the n-th extra NVMe drive, for hosts seeded with more devices than the fillers.
func nvme(n int) types.HostPciDevice {
	return filler(fmt.Sprintf("0000:%02x:00.0", 0xb0+n%0x40), 0x0108, 0x144d, 0xa824,
		"Samsung Electronics Co Ltd", "NVMe SSD Controller PM173X")
}

func passthru(device types.HostPciDevice, capable, enabled, active bool) *types.HostPciPassthruInfo {
	return &types.HostPciPassthruInfo{Id: device.Id, DependentDevice: device.Id,
		PassthruCapable: capable, PassthruEnabled: enabled, PassthruActive: active}
}

func sriov(device types.HostPciDevice, enabled bool, vfs, max int32) *types.HostSriovInfo {
	return &types.HostSriovInfo{
		HostPciPassthruInfo: *passthru(device, true, false, false),
		SriovCapable:        true, SriovEnabled: enabled, SriovActive: enabled,
		NumVirtualFunctionRequested: vfs, NumVirtualFunction: vfs, MaxVirtualFunctionSupported: max,
	}
}

// register renders a CPUID register the way the API does: 32 bits, most significant first, in
// ':'-separated groups of four.
func register(value uint32) string {
	bits := fmt.Sprintf("%032b", value)
	groups := make([]string, 0, 8)
	for i := 0; i < 32; i += 4 {
		groups = append(groups, bits[i:i+4])
	}
	return strings.Join(groups, ":")
}

// ascii4 packs four characters of a CPUID vendor string the way the register holds them.
func ascii4(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// cpuid is the CPUID leaves 0, 1, 0x80000000 and 0x80000001 of a processor (leaf numbers are
// signed 32-bit integers in the API: 0x80000001 is -2147483647).
func (c cpu) cpuid() []types.HostCpuIdInfo {
	if c.noRegisters {
		return nil
	}
	vendor := "GenuineIntel"
	if c.vendor == "amd" {
		vendor = "AuthenticAMD"
	}
	leaf := func(level uint32, eax, ebx, ecx, edx uint32) types.HostCpuIdInfo {
		return types.HostCpuIdInfo{Level: int32(level), Vendor: c.vendor, Eax: register(eax),
			Ebx: register(ebx), Ecx: register(ecx), Edx: register(edx)}
	}
	return []types.HostCpuIdInfo{
		leaf(0, 0x1b, ascii4(vendor[0:4]), ascii4(vendor[8:12]), ascii4(vendor[4:8])),
		leaf(1, 0x000606a6, 0x00800800, c.leaf1ECX, 0xbfebfbff),
		leaf(0x80000000, 0x80000008, 0, 0, 0),
		leaf(0x80000001, 0, 0, c.ext1ECX, 0x2c100800),
	}
}

func seedHost(host *simulator.HostSystem, p profile, pciPerHost int) {
	host.Capability = &types.HostCapability{
		NestedHVSupported:         p.nested,
		CpuHwMmuSupported:         p.hwMmu,
		VmDirectPathGen2Supported: p.directPathGen2,
		VmotionSupported:          true,
		MaxRunningVMs:             1024,
		MaxSupportedVcpus:         768,
		FtCompatibilityIssues:     append([]string(nil), p.ftIssues...),
		SmpFtCompatibilityIssues:  append([]string(nil), p.ftIssues...),
	}

	devices := append([]types.HostPciDevice{}, p.special...)
	for i := 0; len(devices) < pciPerHost; i++ {
		if i < len(fillers) {
			devices = append(devices, fillers[i])
		} else {
			devices = append(devices, nvme(i-len(fillers)))
		}
	}
	infos := append([]types.BaseHostPciPassthruInfo{}, p.passthru...)
	for _, device := range devices[len(p.special):] {
		capable := p.iommu && (device.ClassId == 0x0108 || device.ClassId == 0x0c03)
		infos = append(infos, passthru(device, capable, false, false))
	}

	registers := p.cpu.cpuid()
	hw := *host.Hardware
	hw.PciDevice = devices
	hw.CpuFeature = registers
	hw.MemorySize = p.memoryGiB << 30
	hw.CpuInfo = types.HostCpuInfo{NumCpuPackages: 2, NumCpuCores: 2 * p.cpu.cores,
		NumCpuThreads: 4 * p.cpu.cores, Hz: int64(p.cpu.mhz) * 1000000}
	hw.CpuPkg = nil
	for index := int16(0); index < 2; index++ {
		hw.CpuPkg = append(hw.CpuPkg, types.HostCpuPackage{Index: index, Vendor: p.cpu.vendor,
			Hz: int64(p.cpu.mhz) * 1000000, BusHz: 100000000, Description: p.cpu.model,
			CpuFeature: registers})
	}
	host.Hardware = &hw

	summary := *host.Summary.Hardware
	summary.Vendor, summary.Model = p.server[0], p.server[1]
	summary.CpuModel, summary.CpuMhz = p.cpu.model, p.cpu.mhz
	summary.MemorySize = hw.MemorySize
	summary.NumCpuPkgs, summary.NumCpuCores, summary.NumCpuThreads = 2, 2*p.cpu.cores, 4*p.cpu.cores
	host.Summary.Hardware = &summary
	host.Summary.QuickStats.OverallMemoryUsage = p.usedMiB

	product := types.AboutInfo{Name: "VMware ESXi", FullName: "VMware ESXi " + p.release[0] + " build-" + p.release[1],
		Vendor: "VMware, Inc.", Version: p.release[0], Build: p.release[1], OsType: "vmnix-x86",
		ProductLineId: "embeddedEsx", ApiType: "HostAgent", ApiVersion: p.release[0][:3]}
	host.Summary.Config.Product = &product

	if host.Config != nil {
		cfg := *host.Config
		cfg.Product = product
		cfg.PciPassthruInfo = infos
		cfg.SharedPassthruGpuTypes = append([]string(nil), p.gpuTypes...)
		cfg.GraphicsInfo = nil
		for _, g := range p.graphics {
			cfg.GraphicsInfo = append(cfg.GraphicsInfo, types.HostGraphicsInfo{DeviceName: g.device.DeviceName,
				VendorName: g.device.VendorName, PciId: g.device.Id, GraphicsType: string(g.kind),
				MemorySizeInKB: g.memoryGiB << 20})
		}
		host.Config = &cfg
	}
}

// envBrowser is a cluster's EnvironmentBrowser that names, for each hardware version, the hosts whose
// ESXi release creates it (QueryConfigOptionDescriptor), as vCenter does.
type envBrowser struct {
	*simulator.EnvironmentBrowser
	hosts []types.ManagedObjectReference
	vmx   map[types.ManagedObjectReference]int
}

func (b *envBrowser) QueryConfigOptionDescriptor(ctx *simulator.Context, req *types.QueryConfigOptionDescriptor) soap.HasFault {
	body := &methods.QueryConfigOptionDescriptorBody{Res: new(types.QueryConfigOptionDescriptorResponse)}
	for version := 13; version <= 21; version++ {
		var hosts []types.ManagedObjectReference
		for _, host := range b.hosts {
			if b.vmx[host] >= version {
				hosts = append(hosts, host)
			}
		}
		if len(hosts) == 0 {
			continue
		}
		key := fmt.Sprintf("vmx-%d", version)
		body.Res.Returnval = append(body.Res.Returnval, types.VirtualMachineConfigOptionDescriptor{
			Key: key, Description: key, Host: hosts, CreateSupported: types.NewBool(true),
			DefaultConfigOption: types.NewBool(false), RunSupported: types.NewBool(true),
			UpgradeSupported: types.NewBool(true)})
	}
	return body
}

// seedHardwareVersions puts an envBrowser in place of each cluster's EnvironmentBrowser.
func seedHardwareVersions() {
	for _, entity := range simulator.Map.All("ClusterComputeResource") {
		cluster := entity.(*simulator.ClusterComputeResource)
		if cluster.EnvironmentBrowser == nil {
			continue
		}
		original, ok := simulator.Map.Get(*cluster.EnvironmentBrowser).(*simulator.EnvironmentBrowser)
		if !ok {
			continue
		}
		browser := &envBrowser{EnvironmentBrowser: original, hosts: cluster.Host,
			vmx: map[types.ManagedObjectReference]int{}}
		for _, ref := range cluster.Host {
			host := simulator.Map.Get(ref).(*simulator.HostSystem)
			browser.vmx[ref] = profiles[hostIndex(host.Name)%len(profiles)].vmx
		}
		simulator.Map.Put(browser)
	}
}

// seedDeviceVMs makes, through the simulator's own API in process, the VMs other teams run on the
// lab's GPUs (see the top): only on hosts that have those GPUs.
func seedDeviceVMs(service *simulator.Service) error {
	ctx := context.Background()
	client, err := vim25.NewClient(ctx, service)
	if err != nil {
		return err
	}
	datacenter := simulator.Map.All("Datacenter")[0].(*simulator.Datacenter)
	folder := object.NewFolder(client, datacenter.VmFolder)
	cluster := simulator.Map.All("ClusterComputeResource")[0].(*simulator.ClusterComputeResource)
	pool := object.NewResourcePool(client, *cluster.ResourcePool)
	hosts := map[string]*simulator.HostSystem{}
	for _, entity := range simulator.Map.All("HostSystem") {
		hosts[entity.(*simulator.HostSystem).Name] = entity.(*simulator.HostSystem)
	}
	create := func(name string, host *simulator.HostSystem, device types.BaseVirtualDevice, on bool) (types.ManagedObjectReference, error) {
		locked := true
		spec := types.VirtualMachineConfigSpec{Name: name, GuestId: "otherLinux64Guest", NumCPUs: 4, MemoryMB: 8192,
			MemoryReservationLockedToMax: &locked, Firmware: "efi",
			Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
			DeviceChange: []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{
				Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: device}}}
		hostRef := host.Reference()
		task, err := folder.CreateVM(ctx, spec, pool, object.NewHostSystem(client, hostRef))
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		ref := info.Result.(types.ManagedObjectReference)
		if on {
			task, err := object.NewVirtualMachine(client, ref).PowerOn(ctx)
			if err == nil {
				_, err = task.WaitForResult(ctx, nil)
			}
			if err != nil {
				return ref, err
			}
		}
		return ref, nil
	}
	if host := hosts["DC0_C0_H0"]; host != nil {
		for _, held := range []struct {
			name string
			gpu  types.HostPciDevice
		}{{"vdi-pool-3", a100x80}, {"vdi-pool-4", a100x80b}} {
			vgpu := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: -1,
				Backing: &types.VirtualPCIPassthroughVmiopBackingInfo{Vgpu: "grid_a100-20c"}}}
			ref, err := create(held.name, host, vgpu, true)
			if err != nil {
				return err
			}
			cfg := *host.Config
			cfg.GraphicsInfo = append([]types.HostGraphicsInfo(nil), cfg.GraphicsInfo...)
			for i := range cfg.GraphicsInfo {
				if cfg.GraphicsInfo[i].PciId == held.gpu.Id {
					cfg.GraphicsInfo[i].Vm = append(cfg.GraphicsInfo[i].Vm, ref)
				}
			}
			host.Config = &cfg
		}
	}
	if host := hosts["DC0_C0_H1"]; host != nil {
		dynamic := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: -1,
			Backing: &types.VirtualPCIPassthroughDynamicBackingInfo{
				AllowedDevice: []types.VirtualPCIPassthroughAllowedDevice{{VendorId: 0x10de, DeviceId: nvidiaA10}}}}}
		if _, err := create("render-farm-7", host, dynamic, false); err != nil {
			return err
		}
	}
	return nil
}

// markOwned sets virtplane's ownership custom attribute on every seeded VM, naming each VM as the
// resource of the given stack, and sizes their disks in whole GiB, so a benchmark can declare them as
// they are without a create pass.
func markOwned(stack string) {
	fields := simulator.Map.CustomFieldsManager()
	fields.AddCustomFieldDef(&types.AddCustomFieldDef{Name: "virtplane.owner", MoType: "VirtualMachine"})
	var key int32
	for _, def := range fields.Field {
		if def.Name == "virtplane.owner" {
			key = def.Key
		}
	}
	for _, entity := range simulator.Map.All("VirtualMachine") {
		vm := entity.(*simulator.VirtualMachine)
		value := &types.CustomFieldStringValue{
			CustomFieldValue: types.CustomFieldValue{Key: key},
			Value:            "stack=" + stack + ";resource=" + vm.Name,
		}
		vm.CustomValue = append(vm.CustomValue, value)
		vm.Value = append(vm.Value, value)
		for _, device := range vm.Config.Hardware.Device {
			if disk, ok := device.(*types.VirtualDisk); ok {
				disk.CapacityInKB = 1024 * 1024 // whole GiB, as a declared Disk(1) reads back
				disk.CapacityInBytes = disk.CapacityInKB * 1024
			}
		}
	}
}
