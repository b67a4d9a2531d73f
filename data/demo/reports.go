package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"

	"gridmap/data"
	"gridmap/geo"
	"gridmap/grid"
)

// Demo events: reports and moves one by one for a live simulation
// (Reports, used by `gridmap simulate`), and drawn from the same
// generator, a history for a wall that looks like a real command centre
// (Events).

// classWeights is the class mix of demo events, in parts per thousand:
// street-level nuisances dominate a real city's caseload, emergencies are
// rare. Classes of the catalogue missing here get otherClassWeight; codes
// here missing from the catalogue are skipped.
var classWeights = map[string]float64{
	"0102": 150, "0505": 130, "0503": 110, "0201": 100, "0104": 90,
	"0506": 55, "0501": 45, "0504": 40, "0103": 30, "0101": 25, "0508": 25,
	"0301": 20, "0106": 15, "0302": 15, "0303": 15, "0202": 15, "0404": 15, "0406": 15,
	"0510": 12, "0203": 10, "0405": 10, "0601": 10, "0105": 8, "0502": 8, "0507": 8, "0304": 8,
	"0107": 6, "0402": 5, "0305": 4, "0407": 4, "0401": 2, "0411": 2, "0403": 1,
}

const otherClassWeight = 3

// eventTexts holds short report texts per class; %s is the place.
var eventTexts = map[string][]string{
	"0101": {"%s有人搭建铁皮棚", "%s楼顶疑似违章加建", "%s围墙外私自搭建简易房"},
	"0102": {"%s垃圾堆放未清运", "%s生活垃圾散落地面，气味较大", "%s垃圾桶满溢，周边散落垃圾", "%s有人随意丢弃大件家具"},
	"0103": {"%s积存建筑垃圾渣土", "%s装修垃圾堆放多日未清"},
	"0104": {"%s路面有大片油污", "%s人行道落叶垃圾较多，未及时清扫", "%s路面泥浆污染", "%s地面有大量烟头纸屑"},
	"0105": {"%s河道水面漂浮垃圾", "%s排洪渠内有大量杂物"},
	"0106": {"%s绿化带内垃圾较多", "%s绿地被踩踏，杂物堆放"},
	"0107": {"%s有人焚烧树叶垃圾，烟雾较大"},
	"0201": {"%s电线杆上张贴小广告", "%s墙面喷涂办证电话", "%s公交站亭贴满小广告", "%s楼道内张贴开锁小广告"},
	"0202": {"%s私自悬挂横幅广告", "%s商铺外墙违规张贴海报"},
	"0203": {"%s人行道上摆放广告牌", "%s店铺门前立式广告牌占道"},
	"0301": {"%s工地夜间施工噪音大", "%s工地清晨开始施工扰民"},
	"0302": {"%s工地未覆盖防尘网，扬尘严重", "%s工地出入口车辆带泥上路"},
	"0303": {"%s渣土车沿途遗撒", "%s路面遗撒砂石"},
	"0304": {"%s施工围挡占用车道", "%s施工材料堆放占用人行道"},
	"0305": {"%s有人开挖路面，未见施工许可公示"},
	"0401": {"%s路面出现塌陷坑洞，存在安全隐患", "%s人行道塌陷约一米见方"},
	"0402": {"%s自来水管爆裂，路面大量冒水", "%s地下水管漏水"},
	"0403": {"%s闻到明显燃气味，疑似管道泄漏"},
	"0404": {"%s下水道堵塞，污水外溢", "%s雨水井盖破损", "%s污水井冒水"},
	"0405": {"%s路面积水较深，影响通行", "%s下穿通道积水"},
	"0406": {"%s路面坑洼破损", "%s人行道地砖松动破损"},
	"0407": {"%s路灯不亮", "%s配电箱门损坏，线缆外露"},
	"0411": {"%s垃圾桶起火", "%s一处商铺冒烟起火", "%s电动车起火"},
	"0501": {"%s流动摊贩聚集叫卖", "%s有三轮车游商占道售卖水果"},
	"0502": {"%s有流浪人员长期滞留"},
	"0503": {"%s商铺占用人行道摆卖", "%s夜市摊档占道经营", "%s早餐摊占道经营"},
	"0504": {"%s餐饮店店外摆放桌椅", "%s汽修店在门外维修车辆"},
	"0505": {"%s机动车占用人行道停放", "%s车辆违停堵塞消防通道", "%s路口多辆车违停"},
	"0506": {"%s共享单车大量堆积", "%s电动车乱停放堵塞通道"},
	"0507": {"%s有大型犬未拴绳", "%s流浪犬聚集，居民担心安全"},
	"0508": {"%s商铺音响外放声音过大", "%s广场舞音响噪音扰民", "%s夜间娱乐场所噪音扰民"},
	"0510": {"%s夜间露天烧烤油烟扰民", "%s店外设烧烤炉经营"},
	"0601": {"%s市民反映问题，需现场核实"},
}

var spots = []string{"路口东侧", "公交站旁", "小区南门", "菜市场门口", "地铁站出口", "学校周边", "商业街",
	"城中村巷道内", "公园入口", "人行天桥下", "停车场出口", "沿街商铺前", "工业园门口", "社区服务中心旁", "农贸市场旁", "河堤步道"}

// hourWeights is when reports come in (local hour): patrols and
// citizens by day, a trickle at night.
var hourWeights = [24]float64{0.6, 0.4, 0.3, 0.2, 0.2, 0.4, 1.2, 3, 6, 9, 10, 9.5, 6, 5.5, 8, 9, 9, 7.5, 5, 4, 3.5, 3, 2, 1.2}

// Sources: grid workers on patrol report most; the hotline takes what
// residents hear and smell; cameras and sensors watch parking, rubbish and water.
var (
	sources          = []grid.EventSource{grid.SourceGridWorker, grid.SourceHotline, grid.SourceApp, grid.SourceSensor, grid.SourceInspection}
	sourceMix        = []float64{52, 18, 12, 8, 10}
	sourceMixHotline = []float64{25, 55, 15, 0, 5}
	sourceMixSensor  = []float64{40, 8, 8, 35, 9}
	hotlineHeavy     = map[string]bool{"0508": true, "0301": true, "0502": true, "0507": true, "0403": true, "0411": true}
	sensorHeavy      = map[string]bool{"0505": true, "0405": true, "0102": true, "0506": true, "0302": true}
)

// altDepartment is where an event goes when the first department says
// it is not theirs.
var altDepartment = map[string]string{
	"cgj": "jdb", "jdb": "cgj", "jtj": "zjj", "swj": "jtj", "jgj": "jtj", "hbj": "cgj",
	"gaj": "jdb", "zjj": "cgj", "scj": "cgj", "yjj": "xfj", "xfj": "yjj", "gdj": "jtj",
}

var (
	rejectNotes   = []string{"重复上报，已合并至同类案件", "经核实不属于城市管理范围", "现场核实无此问题", "信息不全，无法立案"}
	handlingNotes = []string{"已接单，安排人员前往现场", "处置人员已到场", "正在处置"}
	suspendNotes  = []string{"等待产权单位确认", "涉及施工许可，待审批", "恶劣天气，暂停作业"}
	returnNotes   = []string{"现场核查未处置到位，退回重派", "问题反弹，退回处置部门"}
	verifyNotes   = []string{"现场核查，已处置到位", "核查属实，处置到位"}
	handledNotes  = map[string][]string{
		"01": {"已清理完毕，现场恢复整洁", "已安排保洁清理"},
		"02": {"小广告已清除", "已拆除违规广告"},
		"03": {"已责令施工单位整改", "施工单位已整改到位"},
		"04": {"已抢修完毕，恢复正常", "已设置围挡并完成修复"},
		"05": {"已劝离，现场秩序恢复", "已依法处理，现场已规范"},
	}
)

// Reports draws realistic reports over the store's grids (denser in
// some streets and around hot spots) and plausible next moves of events,
// reproducibly for a seed. It is safe for concurrent use.
type Reports struct {
	mu      sync.Mutex
	cfg     *data.EventConfig
	loc     *grid.Locator
	rng     *rand.Rand
	grids   []grid.Unit
	preps   []*geo.Prepared
	hot     [][]orb.Point // per grid, its hot spots (a market, a bus stop)
	cum     []float64     // cumulative grid weights
	classes []grid.EventClass
	ccum    []float64
	depts   []string // sorted department codes
	periods []grid.Period
	workday time.Duration
}

// NewReports prepares a generator over the store's current grids
// (only those of district when it is given) and its event catalogue.
func NewReports(ctx context.Context, s *data.Store, seed uint64, district string) (*Reports, error) {
	cfg, err := s.EventConfig(ctx)
	if err != nil {
		return nil, err
	}
	units, err := s.CurrentUnits(ctx)
	if err != nil {
		return nil, err
	}
	g := &Reports{cfg: cfg, loc: grid.NewLocator(units), rng: rand.New(rand.NewPCG(seed, seed^0x5eed_e7e7_0bad_cafe)), grids: gridsIn(units, district)}
	if len(g.grids) == 0 {
		if district != "" {
			return nil, fmt.Errorf("no grids in district %q", district)
		}
		return nil, fmt.Errorf("the store has no grids: build the demo city first")
	}
	g.preps = make([]*geo.Prepared, len(g.grids))
	g.hot = make([][]orb.Point, len(g.grids))
	g.weighGrids()
	if err := g.weighClasses(); err != nil {
		return nil, err
	}
	for d := range cfg.Departments {
		g.depts = append(g.depts, d)
	}
	sort.Strings(g.depts)
	g.periods = cfg.Calendar.Periods()
	for _, p := range g.periods {
		g.workday += time.Duration(p.End-p.Start) * time.Minute
	}
	return g, nil
}

// weighGrids makes streets busy and quiet ones: a street's weight is
// log-normal; a grid's is its street's times the square root of its area,
// times a log-normal of its own.
func (g *Reports) weighGrids() {
	streetW := map[string]float64{}
	var total float64
	for _, u := range g.grids {
		st := u.Code[:9]
		w, ok := streetW[st]
		if !ok {
			w = math.Exp(0.9 * g.rng.NormFloat64())
			streetW[st] = w
		}
		total += w * math.Sqrt(planar.Area(u.Geometry)) * math.Exp(0.5*g.rng.NormFloat64())
		g.cum = append(g.cum, total)
	}
}

// weighClasses gives each class whose department exists its weight in
// classWeights, by code.
func (g *Reports) weighClasses() error {
	codes := make([]string, 0, len(g.cfg.Classes))
	for c := range g.cfg.Classes {
		if _, ok := g.cfg.Departments[g.cfg.Classes[c].Department]; ok {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 {
		return fmt.Errorf("the store has no event classes")
	}
	sort.Strings(codes)
	var total float64
	for _, c := range codes {
		w, ok := classWeights[c]
		if !ok {
			w = otherClassWeight
		}
		total += w
		g.classes = append(g.classes, g.cfg.Classes[c])
		g.ccum = append(g.ccum, total)
	}
	return nil
}

// Next is a report made at now: a located point in a grid, a class, a
// source and reporter, a description.
func (g *Reports) Next(now time.Time) data.NewEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.report(now)
}

func pick(rng *rand.Rand, cum []float64) int {
	k := sort.SearchFloat64s(cum, rng.Float64()*cum[len(cum)-1])
	return min(k, len(cum)-1)
}

func pickWeighted(rng *rand.Rand, w []float64) int {
	var total float64
	for _, x := range w {
		total += x
	}
	r := rng.Float64() * total
	for i, x := range w {
		if r < x {
			return i
		}
		r -= x
	}
	return len(w) - 1
}

func oneOf[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// point draws a point covered by grid k: near one of its hot spots (45%)
// or anywhere in it.
func (g *Reports) point(k int) orb.Point {
	if g.preps[k] == nil {
		g.preps[k] = geo.Prepare(g.grids[k].Geometry)
		for range 1 + g.rng.IntN(2) {
			g.hot[k] = append(g.hot[k], g.uniform(k))
		}
	}
	if g.rng.Float64() < 0.45 {
		h := oneOf(g.rng, g.hot[k])
		const sigma = 40 / 111195.0 // 40 m
		for range 20 {
			p := orb.Point{h[0] + g.rng.NormFloat64()*sigma/math.Cos(h[1]*math.Pi/180), h[1] + g.rng.NormFloat64()*sigma}
			if g.preps[k].Covers(p) {
				return p
			}
		}
	}
	return g.uniform(k)
}

func (g *Reports) uniform(k int) orb.Point {
	b := g.preps[k].Bound
	var p orb.Point
	for range 200 {
		p = orb.Point{b.Min[0] + g.rng.Float64()*(b.Max[0]-b.Min[0]), b.Min[1] + g.rng.Float64()*(b.Max[1]-b.Min[1])}
		if g.preps[k].Covers(p) {
			return p
		}
	}
	return p
}

func (g *Reports) report(now time.Time) data.NewEvent {
	var k int
	var p orb.Point
	var loc grid.Location
	for try := 0; ; try++ {
		k = pick(g.rng, g.cum)
		p = g.point(k)
		// Round to 1e-7° (1 cm), as a GPS reports it.
		p = orb.Point{math.Round(p[0]*1e7) / 1e7, math.Round(p[1]*1e7) / 1e7}
		if loc = g.loc.Locate(p[0], p[1]); loc.Grid != nil || try > 100 {
			break
		}
	}
	class := g.classes[pick(g.rng, g.ccum)]
	mix := sourceMix
	switch {
	case hotlineHeavy[class.Code]:
		mix = sourceMixHotline
	case sensorHeavy[class.Code]:
		mix = sourceMixSensor
	}
	src := sources[pickWeighted(g.rng, mix)]
	var reporter string
	var occurred *time.Time
	switch src {
	case grid.SourceGridWorker:
		reporter = "网格员-" + loc.Grid.Code
	case grid.SourceHotline:
		reporter = "12345热线"
	case grid.SourceApp:
		reporter = fmt.Sprintf("市民APP用户-%04d", g.rng.IntN(10000))
	case grid.SourceSensor:
		if sensorHeavy[class.Code] && class.Code != "0405" && class.Code != "0302" {
			reporter = fmt.Sprintf("AI视频-%s-%04d", loc.Grid.Code[:9], g.rng.IntN(10000))
		} else {
			reporter = fmt.Sprintf("物联传感器-%s-%04d", loc.Grid.Code[:9], g.rng.IntN(10000))
		}
	case grid.SourceInspection:
		reporter = fmt.Sprintf("%s-巡查员-%d", class.Department, 1+g.rng.IntN(9))
	}
	if src == grid.SourceHotline || src == grid.SourceApp {
		t := now.Add(-time.Duration(5+g.rng.IntN(115)) * time.Minute).Truncate(time.Second)
		occurred = &t
	}
	place := oneOf(g.rng, spots)
	if loc.Community != nil && g.rng.Float64() < 0.8 {
		place = loc.Community.Name + place
	}
	texts := eventTexts[class.Code]
	desc := place + "发现" + class.Name
	if len(texts) > 0 {
		desc = fmt.Sprintf(oneOf(g.rng, texts), place)
	}
	return data.NewEvent{Class: class.Code, Lon: p[0], Lat: p[1], CRS: geo.WGS84, InputLon: p[0], InputLat: p[1], Location: loc,
		Description: desc, Source: src, Reporter: reporter, OccurredAt: occurred}
}

// Actors of the workflow.
func (g *Reports) clerk() string { return fmt.Sprintf("受理员-%02d", 1+g.rng.IntN(12)) }

func (g *Reports) staff(dept string) string {
	return fmt.Sprintf("%s-处置员-%d", dept, 1+g.rng.IntN(9))
}

func (g *Reports) verifier(gridCode string) string {
	if g.rng.Float64() < 0.8 {
		return "网格员-" + gridCode
	}
	return fmt.Sprintf("核查员-%d", 1+g.rng.IntN(6))
}

func (g *Reports) handledNote(class string) string {
	if len(class) >= 2 {
		if ns, ok := handledNotes[class[:2]]; ok {
			return oneOf(g.rng, ns)
		}
	}
	return "已处置完毕"
}

func (g *Reports) deptName(code string) string {
	if d, ok := g.cfg.Departments[code]; ok {
		return d.Name
	}
	return code
}

// otherDepartment is the department a misrouted event goes to instead of cur.
func (g *Reports) otherDepartment(cur string) string {
	if d, ok := altDepartment[cur]; ok && d != cur {
		if _, ok := g.cfg.Departments[d]; ok {
			return d
		}
	}
	var others []string
	for _, d := range g.depts {
		if d != cur {
			others = append(others, d)
		}
	}
	if len(others) == 0 {
		return ""
	}
	return oneOf(g.rng, others)
}

// Move is a plausible next step for ev (its status, department, class and
// grid as read), with actor and note; false when ev is final. The step is
// legal by grid.CheckTransition.
func (g *Reports) Move(ev *data.Event) (data.Transition, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.rng.Float64()
	switch ev.Status {
	case grid.StatusReported:
		if r < 0.06 {
			return data.Transition{To: grid.StatusRejected, Actor: g.clerk(), Note: oneOf(g.rng, rejectNotes)}, true
		}
		return data.Transition{To: grid.StatusRegistered, Actor: g.clerk(), Note: "符合立案条件，予以立案"}, true
	case grid.StatusRegistered:
		return data.Transition{To: grid.StatusDispatched, Actor: g.clerk(), Note: "派遣至" + g.deptName(ev.Department), Department: ev.Department}, true
	case grid.StatusDispatched, grid.StatusHandling:
		if r < 0.04 {
			if d := g.otherDepartment(ev.Department); d != "" {
				return data.Transition{To: grid.StatusDispatched, Actor: g.clerk(), Note: "原部门反馈非本部门职责，改派" + g.deptName(d), Department: d}, true
			}
		}
		if ev.Status == grid.StatusDispatched {
			return data.Transition{To: grid.StatusHandling, Actor: g.staff(ev.Department), Note: oneOf(g.rng, handlingNotes)}, true
		}
		return data.Transition{To: grid.StatusHandled, Actor: g.staff(ev.Department), Note: g.handledNote(ev.Class)}, true
	case grid.StatusHandled:
		if r < 0.08 {
			return data.Transition{To: grid.StatusReturned, Actor: g.verifier(ev.GridCode), Note: oneOf(g.rng, returnNotes)}, true
		}
		return data.Transition{To: grid.StatusVerified, Actor: g.verifier(ev.GridCode), Note: oneOf(g.rng, verifyNotes)}, true
	case grid.StatusReturned:
		return data.Transition{To: grid.StatusDispatched, Actor: g.clerk(), Note: "重新派遣至" + g.deptName(ev.Department), Department: ev.Department}, true
	case grid.StatusVerified:
		return data.Transition{To: grid.StatusClosed, Actor: g.clerk(), Note: "核查通过，结案"}, true
	}
	return data.Transition{}, false
}
